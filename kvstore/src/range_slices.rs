//! A range served a slice of keys at a time, so that a server answering a range over millions
//! of keys can go on with its other work (heartbeats, applies, other clients) between slices.
//!
//! The answer is the one [`KvStore::range`] gives at the revision the first slice fixed: the
//! slices read that revision, which later writes do not change. Only compaction can take it
//! away; each slice checks, and one that finds the revision compacted fails with
//! [`KvError::Compacted`] rather than read a half-compacted history.
//!
//! A range that filters by modification or creation revision is sliced too: as in etcd, its
//! count is of every key in the range, and its records and `more` are of those that pass.
//! A range sorted by key in descending order walks the index downwards. Ranges sorted by
//! another target are not sliced: [`KvStore::range_slices`] says so, and they are served
//! whole.

use bytes::Bytes;

use crate::error::KvError;
use crate::mvcc::range::{passes_filters, resolve_rev, validate};
use crate::mvcc::revision::RangeEnd;
use crate::proto::{KeyValue, RangeRequest, SortOrder, SortTarget};
use crate::store::KvStore;

/// Where a sliced range stands. Made by [`KvStore::range_slices`], moved along by
/// [`KvStore::range_slice`].
#[derive(Debug, Clone)]
pub struct RangeSlices {
    /// The range's first key.
    key: Bytes,
    /// The next key to walk from (inclusive), upwards or downwards; `None` before the first
    /// slice (the range's first key upwards, its last downwards).
    from: Option<Bytes>,
    /// Keys are walked highest first.
    descending: bool,
    /// Where the range ends.
    end: RangeEnd,
    /// The revision read.
    rev: i64,
    /// The store's revision when the range began: the answer's header revision.
    view_rev: i64,
    keys_only: bool,
    count_only: bool,
    /// The revision filters, when the request has any.
    filters: Option<Filters>,
    /// At most this many records are emitted; `None`: all.
    limit: Option<u64>,
    /// Keys in the range at `rev` so far.
    count: i64,
    /// Records emitted so far.
    emitted: u64,
    more: bool,
    done: bool,
}

/// A range request's revision filters (0: none), as [`passes_filters`] reads them.
#[derive(Debug, Clone)]
struct Filters(RangeRequest);

impl Filters {
    fn of(req: &RangeRequest) -> Option<Filters> {
        let filtered = req.min_mod_revision != 0
            || req.max_mod_revision != 0
            || req.min_create_revision != 0
            || req.max_create_revision != 0;
        filtered.then(|| {
            Filters(RangeRequest {
                min_mod_revision: req.min_mod_revision,
                max_mod_revision: req.max_mod_revision,
                min_create_revision: req.min_create_revision,
                max_create_revision: req.max_create_revision,
                ..RangeRequest::default()
            })
        })
    }

    fn pass(&self, record: &KeyValue) -> bool {
        passes_filters(&self.0, record)
    }
}

/// How a sliced range ended: the fields of etcd's `RangeResponse` besides its header and
/// records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeTotals {
    /// The header revision: the store's revision when the range began.
    pub view_rev: i64,
    /// Keys in the range at the revision read.
    pub count: i64,
    /// More records matched than the limit let through.
    pub more: bool,
}

impl RangeSlices {
    /// The store's revision when the range began: the answer's header revision.
    pub fn view_rev(&self) -> i64 {
        self.view_rev
    }

    /// The totals, once [`KvStore::range_slice`] has returned `Ok(true)`.
    pub fn totals(&self) -> RangeTotals {
        assert!(self.done, "a sliced range's totals are known at its end");
        RangeTotals {
            view_rev: self.view_rev,
            count: self.count,
            more: self.more,
        }
    }
}

impl KvStore {
    /// Begins `req` as a sliced range. `Ok(None)`: its answer is not in key order, or it names
    /// one key, so it is served whole by [`KvStore::range`]. Errors are [`KvStore::range`]'s.
    pub fn range_slices(&self, req: &RangeRequest) -> Result<Option<RangeSlices>, KvError> {
        validate(req)?;
        let mvcc = &self.mvcc;
        let view_rev = mvcc.current_rev;
        let rev = resolve_rev(mvcc, req.revision, view_rev)?;
        let end = RangeEnd::from_wire(&req.range_end);
        let order = SortOrder::try_from(req.sort_order).unwrap_or(SortOrder::None);
        let target = SortTarget::try_from(req.sort_target).unwrap_or(SortTarget::Key);
        if end == RangeEnd::Single || target != SortTarget::Key {
            return Ok(None);
        }
        Ok(Some(RangeSlices {
            key: req.key.clone(),
            from: None,
            descending: order == SortOrder::Descend,
            end,
            rev,
            view_rev,
            keys_only: req.keys_only,
            count_only: req.count_only,
            filters: Filters::of(req),
            limit: u64::try_from(req.limit).ok().filter(|limit| *limit > 0),
            count: 0,
            emitted: 0,
            more: false,
            done: false,
        }))
    }

    /// Walks the next `budget_keys` keys of the range (at least one), passing each record the
    /// answer holds to `emit` in key order; `Ok(true)` once the range is done. A revision
    /// compacted since the range began fails it with [`KvError::Compacted`].
    pub fn range_slice(
        &self,
        slices: &mut RangeSlices,
        budget_keys: usize,
        mut emit: impl FnMut(&KeyValue),
    ) -> Result<bool, KvError> {
        assert!(
            !slices.done,
            "a sliced range is moved along until it is done, not after"
        );
        assert!(budget_keys > 0, "a slice walks at least one key");
        let mvcc = &self.mvcc;
        assert!(
            mvcc.current_rev >= slices.view_rev,
            "the store went back in time under a sliced range"
        );
        if slices.rev < mvcc.compact_rev {
            return Err(KvError::Compacted);
        }
        let mut walked = 0;
        let mut resume_at: Option<Bytes> = None;
        let rev = slices.rev;
        let from = slices.from.take();
        let visit = |key: &Bytes, rev: Option<crate::mvcc::revision::Revision>| {
            if walked == budget_keys {
                resume_at = Some(key.clone());
                return false;
            }
            walked += 1;
            let Some(rev) = rev else {
                return true;
            };
            slices.count += 1;
            if slices.count_only {
                return true;
            }
            let record = mvcc.record(rev);
            if slices.filters.as_ref().is_some_and(|f| !f.pass(&record)) {
                return true;
            }
            if slices.limit.is_some_and(|limit| slices.emitted >= limit) {
                slices.more = true;
                return true;
            }
            slices.emitted += 1;
            if slices.keys_only {
                emit(&KeyValue {
                    value: Bytes::new(),
                    ..record
                });
            } else {
                emit(&record);
            }
            true
        };
        if slices.descending {
            mvcc.walk_range_down(&slices.key, &slices.end, from.as_deref(), rev, visit);
        } else {
            let from = from.as_ref().unwrap_or(&slices.key);
            mvcc.walk_range(from, &slices.end, rev, visit);
        }
        match resume_at {
            Some(key) => {
                slices.from = Some(key);
                Ok(false)
            }
            None => {
                slices.done = true;
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests;
