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
//! A range sorted by key in descending order walks the index downwards. One sorted by another
//! target (version, creation or modification revision, value) gathers its records slice by
//! slice in key order, then sorts them a run at a time and hands them out a slice at a time,
//! merging the sorted runs (ties keep key order, as in a whole range). Only a range of one key
//! is served whole: [`KvStore::range_slices`] says so.

use bytes::Bytes;

use crate::error::KvError;
use crate::mvcc::range::{passes_filters, resolve_rev, sort, sort_order, validate};
use crate::mvcc::revision::RangeEnd;
use crate::mvcc::store::Mvcc;
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
    /// The records of a range sorted by another target than the key.
    gathered: Option<Gathered>,
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

/// Sorted runs a gathered range merges at most. More runs make each run's sort shorter (a
/// call sorts at least one run), and cost a comparison more per record handed out each time
/// they double (the runs' next records are kept in a binary heap).
const SORTED_RUNS_MAX: usize = 64;

/// A range sorted by another target than the key: its records, gathered in key order, then
/// sorted a run at a time and merged a slice at a time, so that no call sorts them all.
#[derive(Debug, Clone)]
struct Gathered {
    order: SortOrder,
    target: SortTarget,
    /// Records gathered at most: as in etcd, a range with no sort order (sorted by its target
    /// ascending all the same), no filter and a limit sorts only the first `limit + 1` keys.
    fetch_max: usize,
    records: Vec<KeyValue>,
    /// Once every record is gathered.
    merge: Option<Merge>,
}

/// Where the sorting and merging of gathered records stand.
#[derive(Debug, Clone)]
struct Merge {
    /// Records per sorted run (the last run may hold fewer).
    run_len: usize,
    /// `records[..sorted]` is cut into sorted runs.
    sorted: usize,
    /// Each sorted run's next record to hand out, and its end.
    runs: Vec<(usize, usize)>,
    /// The runs with records left, as a binary heap whose top run's next record comes first
    /// in the answer's order; built once every run is sorted.
    heap: Option<Vec<usize>>,
    /// Records still to hand out: the limit cuts the merged order short.
    left: usize,
}

impl Merge {
    /// Restores the heap below `at`, given that `precedes(a, b)` says run `a`'s next record
    /// comes before run `b`'s.
    fn sift_down(heap: &mut [usize], mut at: usize, precedes: impl Fn(usize, usize) -> bool) {
        loop {
            let mut first = at;
            for child in [2 * at + 1, 2 * at + 2] {
                if child < heap.len() && precedes(heap[child], heap[first]) {
                    first = child;
                }
            }
            if first == at {
                return;
            }
            heap.swap(at, first);
            at = first;
        }
    }
}

impl Gathered {
    /// Every record is gathered: the sorting begins. `take`: how many records the answer
    /// holds; `budget_keys`: the budget of the calls, which sets the runs' length.
    fn begin_merge(&mut self, take: usize, budget_keys: usize) {
        let run_len = budget_keys
            .max(self.records.len().div_ceil(SORTED_RUNS_MAX))
            .max(1);
        self.merge = Some(Merge {
            run_len,
            sorted: 0,
            runs: Vec::new(),
            heap: None,
            left: take,
        });
    }

    /// Sorts runs, then passes records in the answer's order to `emit`, together about
    /// `budget` of them (a run is sorted whole). Whether all are handed out, and how much of
    /// the budget this call used (at most `budget`).
    fn merge_step(
        &mut self,
        budget: usize,
        keys_only: bool,
        emit: &mut impl FnMut(&KeyValue),
    ) -> (bool, usize) {
        let merge = self
            .merge
            .as_mut()
            .expect("records are merged once gathered");
        let records = &mut self.records;
        let mut used = 0;
        while merge.sorted < records.len() && used < budget {
            let run = merge.sorted..(merge.sorted + merge.run_len).min(records.len());
            sort(&mut records[run.clone()], self.order, self.target);
            used += run.len();
            merge.runs.push((run.start, run.end));
            merge.sorted = run.end;
        }
        if merge.sorted < records.len() {
            return (false, used.min(budget));
        }
        let cmp = sort_order(self.order, self.target)
            .expect("only a range sorted by another target than the key gathers");
        let Merge {
            runs, heap, left, ..
        } = merge;
        // Run `a`'s next record comes first; on a tie the earlier run's, whose keys are lower:
        // ties keep key order, as in a whole sort.
        let precedes = |runs: &[(usize, usize)], a: usize, b: usize| {
            cmp(&records[runs[a].0], &records[runs[b].0])
                .then(a.cmp(&b))
                .is_lt()
        };
        let heap = heap.get_or_insert_with(|| {
            let mut heap: Vec<usize> = (0..runs.len()).filter(|&r| runs[r].0 < runs[r].1).collect();
            for at in (0..heap.len() / 2).rev() {
                Merge::sift_down(&mut heap, at, |a, b| precedes(runs, a, b));
            }
            heap
        });
        while *left > 0 && used < budget {
            let run = *heap
                .first()
                .expect("a record left to hand out is in some run");
            let at = runs[run].0;
            runs[run].0 += 1;
            if runs[run].0 == runs[run].1 {
                heap.swap_remove(0);
            }
            Merge::sift_down(heap, 0, |a, b| precedes(runs, a, b));
            emit_record(&records[at], keys_only, emit);
            *left -= 1;
            used += 1;
        }
        (*left == 0, used.min(budget))
    }
}

/// Passes `record` to `emit`, without its value when the range asks for keys only.
fn emit_record(record: &KeyValue, keys_only: bool, emit: &mut impl FnMut(&KeyValue)) {
    if keys_only && !record.value.is_empty() {
        emit(&KeyValue {
            value: Bytes::new(),
            ..record.clone()
        });
    } else {
        emit(record);
    }
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
    /// Begins `req` as a sliced range. `Ok(None)`: it names one key, so it is served whole by
    /// [`KvStore::range`]. Errors are [`KvStore::range`]'s.
    pub fn range_slices(&self, req: &RangeRequest) -> Result<Option<RangeSlices>, KvError> {
        RangeSlices::begin(&self.mvcc, req, self.mvcc.current_rev)
    }

    /// Walks the next `budget_keys` keys of the range (at least one), passing each record the
    /// answer holds to `emit` in the answer's order; `Ok(true)` once the range is done. A
    /// revision compacted since the range began fails it with [`KvError::Compacted`].
    ///
    /// A range sorted by another target than the key passes nothing until it has walked every
    /// key; then each call sorts a run of what it gathered or merges about `budget_keys`
    /// records out of the sorted runs.
    pub fn range_slice(
        &self,
        slices: &mut RangeSlices,
        budget_keys: usize,
        emit: impl FnMut(&KeyValue),
    ) -> Result<bool, KvError> {
        assert!(
            self.mvcc.current_rev >= slices.view_rev,
            "the store went back in time under a sliced range"
        );
        let (done, _used) = slices.advance(&self.mvcc, budget_keys, emit)?;
        Ok(done)
    }
}

impl RangeSlices {
    /// Begins `req` over `mvcc` as seen at `view_rev` (the current revision, or a txn's own
    /// view, its changes so far included). `Ok(None)` for a range of one key.
    pub(crate) fn begin(
        mvcc: &Mvcc,
        req: &RangeRequest,
        view_rev: i64,
    ) -> Result<Option<RangeSlices>, KvError> {
        validate(req)?;
        let rev = resolve_rev(mvcc, req.revision, view_rev)?;
        let end = RangeEnd::from_wire(&req.range_end);
        let order = SortOrder::try_from(req.sort_order).unwrap_or(SortOrder::None);
        let target = SortTarget::try_from(req.sort_target).unwrap_or(SortTarget::Key);
        if end == RangeEnd::Single {
            return Ok(None);
        }
        let filters = Filters::of(req);
        let fetch_max = match u64::try_from(req.limit) {
            Ok(limit) if limit > 0 && order == SortOrder::None && filters.is_none() => {
                usize::try_from(limit).map_or(usize::MAX, |l| l.saturating_add(1))
            }
            _ => usize::MAX,
        };
        let gathered = (target != SortTarget::Key).then(|| Gathered {
            order,
            target,
            fetch_max,
            records: Vec::new(),
            merge: None,
        });
        Ok(Some(RangeSlices {
            key: req.key.clone(),
            from: None,
            descending: target == SortTarget::Key && order == SortOrder::Descend,
            gathered,
            end,
            rev,
            view_rev,
            keys_only: req.keys_only,
            count_only: req.count_only,
            filters,
            limit: u64::try_from(req.limit).ok().filter(|limit| *limit > 0),
            count: 0,
            emitted: 0,
            more: false,
            done: false,
        }))
    }

    /// Walks the next `budget_keys` keys (at least one) as [`KvStore::range_slice`] does; also
    /// says how much of the budget it used: keys walked, or records handed out.
    pub(crate) fn advance(
        &mut self,
        mvcc: &Mvcc,
        budget_keys: usize,
        mut emit: impl FnMut(&KeyValue),
    ) -> Result<(bool, usize), KvError> {
        let slices = self;
        assert!(
            !slices.done,
            "a sliced range is moved along until it is done, not after"
        );
        assert!(budget_keys > 0, "a slice walks at least one key");
        if let Some(gathered) = slices.gathered.as_mut().filter(|g| g.merge.is_some()) {
            // Everything is gathered, out of the store: compaction no longer matters.
            let (done, used) = gathered.merge_step(budget_keys, slices.keys_only, &mut emit);
            slices.done = done;
            return Ok((done, used));
        }
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
            if let Some(gathered) = &slices.gathered {
                if gathered.records.len() >= gathered.fetch_max {
                    return true;
                }
            }
            let limit_reached = slices.limit.is_some_and(|limit| slices.emitted >= limit);
            if limit_reached
                && slices.gathered.is_none()
                && (slices.filters.is_none() || slices.more)
            {
                // Nothing more to emit, and `more` is known: count without reading the record
                // (a count over a million keys with `--limit 1` reads one).
                slices.more = true;
                return true;
            }
            let record = mvcc.record(rev);
            if slices.filters.as_ref().is_some_and(|f| !f.pass(&record)) {
                return true;
            }
            if let Some(gathered) = &mut slices.gathered {
                // The limit applies once sorted; a value only the sort needs goes then.
                let strip = slices.keys_only && gathered.target != SortTarget::Value;
                gathered.records.push(if strip {
                    KeyValue {
                        value: Bytes::new(),
                        ..record
                    }
                } else {
                    record
                });
                return true;
            }
            if limit_reached {
                slices.more = true;
                return true;
            }
            slices.emitted += 1;
            emit_record(&record, slices.keys_only, &mut emit);
            true
        };
        if slices.descending {
            mvcc.walk_range_down(&slices.key, &slices.end, from.as_deref(), rev, visit);
        } else {
            let from = from.as_ref().unwrap_or(&slices.key);
            mvcc.walk_range(from, &slices.end, rev, visit);
        }
        if let Some(key) = resume_at {
            slices.from = Some(key);
            return Ok((false, walked));
        }
        let mut used = walked;
        match &mut slices.gathered {
            None => slices.done = true,
            Some(gathered) => {
                let total = gathered.records.len();
                let take = slices
                    .limit
                    .and_then(|l| usize::try_from(l).ok())
                    .map_or(total, |limit| limit.min(total));
                slices.more |= take < total;
                gathered.begin_merge(take, budget_keys);
                // What the walk left of the budget goes to sorting and handing out: a small
                // range is done in one call.
                let budget_left = budget_keys - walked;
                slices.done = take == 0;
                if !slices.done && budget_left > 0 {
                    let (done, step_used) =
                        gathered.merge_step(budget_left, slices.keys_only, &mut emit);
                    slices.done = done;
                    used += step_used;
                }
            }
        }
        Ok((slices.done, used))
    }
}

#[cfg(test)]
mod tests;
