//! The watch hub: watchers, their bounded queues, and catch-up from history.
//!
//! A watcher is *synced* when every event up to the current revision has been queued for it;
//! apply then queues each new revision's matching events directly. A watcher whose queue holds
//! `watch_pending_events_max` events when a revision arrives stops receiving live events and
//! becomes *unsynced*, remembering the first revision it lacks; `sync_step` later reads that
//! revision onwards from the MVCC history, so apply never waits for a slow watcher and no event
//! is lost or repeated. An unsynced watcher whose next revision falls below the compacted
//! revision gets etcd's compacted response and is removed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use prost::Message;

use crate::error::KvError;
use crate::mvcc::revision::{RangeEnd, Revision};
use crate::mvcc::store::{Mvcc, is_tombstone};
use crate::proto::{
    Event, EventType, FilterType, ResponseHeader, WatchCreateRequest, WatchResponse,
};

/// A watcher's identity in the hub. The hub numbers watchers across all client streams; the
/// runtime maps them to each stream's own `watch_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WatchId(u64);

impl WatchId {
    /// The hub's number for this watcher.
    pub fn get(self) -> u64 {
        self.0
    }

    fn wire(self) -> i64 {
        self.0 as i64
    }
}

#[derive(Debug)]
struct Watcher {
    key: Bytes,
    end: RangeEnd,
    no_put: bool,
    no_delete: bool,
    prev_kv: bool,
    progress_notify: bool,
    fragment: bool,
    /// The first revision whose events are not queued yet (exact while unsynced; while synced
    /// it may lag behind, since every later revision reaches the queue directly).
    next_rev: i64,
    synced: bool,
    /// Set once the watcher's revision has been compacted; it is then removed after its queue.
    compacted: bool,
    progress_requested: bool,
    pending: VecDeque<Event>,
}

impl Watcher {
    fn wants(&self, ev: &Event) -> bool {
        let Some(kv) = &ev.kv else { return false };
        let is_put = ev.r#type == EventType::Put as i32;
        if (is_put && self.no_put) || (!is_put && self.no_delete) {
            return false;
        }
        self.end.contains(&self.key, &kv.key)
    }

    fn shaped(&self, ev: &Event) -> Event {
        Event {
            r#type: ev.r#type,
            kv: ev.kv.clone(),
            prev_kv: if self.prev_kv {
                ev.prev_kv.clone()
            } else {
                None
            },
        }
    }
}

#[derive(Debug)]
pub(crate) struct WatchHub {
    watchers: BTreeMap<u64, Watcher>,
    /// Single-key watchers by key, and the rest: apply looks up only the watchers an event can
    /// concern instead of testing every watcher.
    by_key: BTreeMap<Bytes, BTreeSet<u64>>,
    ranged: BTreeSet<u64>,
    next_id: u64,
    outbox: VecDeque<(WatchId, WatchResponse)>,
    ready: BTreeSet<u64>,
    unsynced: BTreeSet<u64>,
    pending_events_max: usize,
    fragment_bytes_max: usize,
    watchers_max: usize,
}

fn header(rev: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision: rev,
        ..ResponseHeader::default()
    })
}

impl WatchHub {
    pub(crate) fn new(
        pending_events_max: usize,
        fragment_bytes_max: usize,
        watchers_max: usize,
    ) -> Self {
        WatchHub {
            watchers: BTreeMap::new(),
            by_key: BTreeMap::new(),
            ranged: BTreeSet::new(),
            next_id: 1,
            outbox: VecDeque::new(),
            ready: BTreeSet::new(),
            unsynced: BTreeSet::new(),
            pending_events_max: pending_events_max.max(1),
            fragment_bytes_max: fragment_bytes_max.max(1),
            watchers_max,
        }
    }

    pub(crate) fn create(
        &mut self,
        req: &WatchCreateRequest,
        mvcc: &Mvcc,
        apply_pending: bool,
    ) -> Result<WatchId, KvError> {
        if self.watchers.len() >= self.watchers_max {
            return Err(KvError::TooManyWatchers);
        }
        let id = self.next_id;
        self.next_id += 1;
        // As etcd's gRPC layer: an empty key is the smallest key.
        let key = if req.key.is_empty() {
            Bytes::from_static(&[0])
        } else {
            req.key.clone()
        };
        let current = mvcc.current_rev;
        let start = if req.start_revision <= 0 {
            current + 1
        } else {
            req.start_revision
        };
        // A pending apply writes revision `current + 1`: a watcher from there reads it from
        // history once it is published.
        let synced = start > current + i64::from(apply_pending);
        let w = Watcher {
            key,
            end: RangeEnd::from_wire(&req.range_end),
            no_put: req.filters.contains(&(FilterType::Noput as i32)),
            no_delete: req.filters.contains(&(FilterType::Nodelete as i32)),
            prev_kv: req.prev_kv,
            progress_notify: req.progress_notify,
            fragment: req.fragment,
            next_rev: start,
            synced,
            compacted: start < mvcc.compact_rev,
            progress_requested: false,
            pending: VecDeque::new(),
        };
        if w.compacted {
            self.ready.insert(id);
        } else if !synced {
            self.unsynced.insert(id);
        }
        if w.end == RangeEnd::Single {
            self.by_key.entry(w.key.clone()).or_default().insert(id);
        } else {
            self.ranged.insert(id);
        }
        self.watchers.insert(id, w);
        self.outbox.push_back((
            WatchId(id),
            WatchResponse {
                header: header(current),
                watch_id: id as i64,
                created: true,
                ..WatchResponse::default()
            },
        ));
        Ok(WatchId(id))
    }

    pub(crate) fn cancel(&mut self, id: WatchId, current: i64) -> Result<(), KvError> {
        self.forget(id.0).ok_or(KvError::WatchNotFound)?;
        self.outbox.push_back((
            id,
            WatchResponse {
                header: header(current),
                watch_id: id.wire(),
                canceled: true,
                ..WatchResponse::default()
            },
        ));
        Ok(())
    }

    pub(crate) fn request_progress(&mut self, id: WatchId, current: i64) -> Result<(), KvError> {
        let w = self.watchers.get_mut(&id.0).ok_or(KvError::WatchNotFound)?;
        if w.synced && w.pending.is_empty() {
            self.outbox.push_back((id, progress(id, current)));
        } else {
            w.progress_requested = true;
        }
        Ok(())
    }

    /// Queues an empty response for every idle synced watcher that asked for progress_notify.
    pub(crate) fn progress_tick(&mut self, current: i64) {
        for (id, w) in &self.watchers {
            if w.progress_notify && w.synced && w.pending.is_empty() && !w.compacted {
                self.outbox
                    .push_back((WatchId(*id), progress(WatchId(*id), current)));
            }
        }
    }

    /// Removes a watcher from every table.
    fn forget(&mut self, id: u64) -> Option<Watcher> {
        let w = self.watchers.remove(&id)?;
        self.ready.remove(&id);
        self.unsynced.remove(&id);
        if w.end == RangeEnd::Single {
            if let Some(ids) = self.by_key.get_mut(&w.key) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.by_key.remove(&w.key);
                }
            }
        } else {
            self.ranged.remove(&id);
        }
        Some(w)
    }

    /// Hands one revision's events to the synced watchers.
    pub(crate) fn notify(&mut self, rev: i64, events: &[Event]) {
        let mut candidates: Vec<u64> = self.ranged.iter().copied().collect();
        for e in events {
            if let Some(ids) = e.kv.as_ref().and_then(|kv| self.by_key.get(&kv.key)) {
                candidates.extend(ids);
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        for id in candidates {
            let w = self.watchers.get_mut(&id).expect("indexed watchers exist");
            if !w.synced || rev < w.next_rev {
                continue;
            }
            if !events.iter().any(|e| w.wants(e)) {
                continue;
            }
            if w.pending.len() >= self.pending_events_max {
                w.synced = false;
                w.next_rev = rev;
                self.unsynced.insert(id);
                continue;
            }
            for e in events {
                if w.wants(e) {
                    let shaped = w.shaped(e);
                    w.pending.push_back(shaped);
                }
            }
            w.next_rev = rev + 1;
            self.ready.insert(id);
        }
    }

    /// After Compact(rev): unsynced watchers that still need older revisions are done for.
    pub(crate) fn on_compact(&mut self, compact_rev: i64) {
        let doomed: Vec<u64> = self
            .unsynced
            .iter()
            .copied()
            .filter(|id| self.watchers[id].next_rev < compact_rev)
            .collect();
        for id in doomed {
            self.unsynced.remove(&id);
            if let Some(w) = self.watchers.get_mut(&id) {
                w.compacted = true;
            }
            self.ready.insert(id);
        }
    }

    /// After a restore: every watcher re-reads from the new history where it left off.
    pub(crate) fn on_restore(&mut self, old_current: i64, mvcc: &Mvcc) {
        let ids: Vec<u64> = self.watchers.keys().copied().collect();
        for id in ids {
            let w = self.watchers.get_mut(&id).expect("listed");
            if w.compacted {
                continue;
            }
            if w.synced {
                w.next_rev = w.next_rev.max(old_current + 1);
            }
            w.synced = false;
            self.unsynced.insert(id);
        }
        self.on_compact(mvcc.compact_rev);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.watchers.is_empty()
    }

    pub(crate) fn has_unsynced(&self) -> bool {
        !self.unsynced.is_empty()
    }

    /// Catches unsynced watchers up from history, reading at most about `budget_records` records.
    /// Returns whether unsynced watchers remain.
    pub(crate) fn sync_step(&mut self, mvcc: &Mvcc, budget_records: usize) -> bool {
        let mut budget = budget_records.max(1);
        let ids: Vec<u64> = self.unsynced.iter().copied().collect();
        for id in ids {
            if budget == 0 {
                break;
            }
            let w = self.watchers.get_mut(&id).expect("unsynced watchers exist");
            if w.next_rev < mvcc.compact_rev {
                w.compacted = true;
                self.unsynced.remove(&id);
                self.ready.insert(id);
                continue;
            }
            if w.pending.len() >= self.pending_events_max {
                continue;
            }
            budget = budget.saturating_sub(catch_up(w, mvcc, budget, self.pending_events_max));
            if !w.pending.is_empty() {
                self.ready.insert(id);
            }
            if w.next_rev > mvcc.current_rev {
                w.synced = true;
                self.unsynced.remove(&id);
                if w.progress_requested && w.pending.is_empty() {
                    w.progress_requested = false;
                    let current = mvcc.current_rev;
                    self.outbox
                        .push_back((WatchId(id), progress(WatchId(id), current)));
                }
            }
        }
        !self.unsynced.is_empty()
    }

    /// The next response to send, in the order stated in the crate docs.
    pub(crate) fn poll(
        &mut self,
        current: i64,
        compact_rev: i64,
    ) -> Option<(WatchId, WatchResponse)> {
        if let Some(out) = self.outbox.pop_front() {
            return Some(out);
        }
        let id = self.ready.pop_first()?;
        let w = self.watchers.get_mut(&id)?;
        let wid = WatchId(id);
        if w.pending.is_empty() {
            if w.compacted {
                self.forget(id);
                return Some((wid, compacted(wid, current, compact_rev)));
            }
            return self.poll(current, compact_rev);
        }
        let events: Vec<Event> = w.pending.drain(..).collect();
        let rev = if w.synced { current } else { w.next_rev - 1 };
        if w.synced {
            w.progress_requested = false;
        }
        let fragment = w.fragment;
        if w.compacted {
            self.ready.insert(id);
        }
        let mut responses = self.split(wid, rev, events, fragment);
        let first = responses.remove(0);
        for r in responses.into_iter().rev() {
            self.outbox.push_front((wid, r));
        }
        Some((wid, first))
    }

    fn split(
        &self,
        id: WatchId,
        rev: i64,
        events: Vec<Event>,
        fragment: bool,
    ) -> Vec<WatchResponse> {
        let base = WatchResponse {
            header: header(rev),
            watch_id: id.wire(),
            ..WatchResponse::default()
        };
        if !fragment {
            return vec![WatchResponse { events, ..base }];
        }
        let mut out = Vec::new();
        let mut chunk = Vec::new();
        let mut chunk_bytes = 0usize;
        for e in events {
            let n = e.encoded_len();
            if !chunk.is_empty() && chunk_bytes + n > self.fragment_bytes_max {
                out.push(WatchResponse {
                    events: std::mem::take(&mut chunk),
                    fragment: true,
                    ..base.clone()
                });
                chunk_bytes = 0;
            }
            chunk_bytes += n;
            chunk.push(e);
        }
        out.push(WatchResponse {
            events: chunk,
            ..base
        });
        out
    }
}

fn progress(id: WatchId, current: i64) -> WatchResponse {
    WatchResponse {
        header: header(current),
        watch_id: id.wire(),
        ..WatchResponse::default()
    }
}

/// As etcd: `compact_revision` set and `canceled`; clients turn it into the compacted error.
fn compacted(id: WatchId, current: i64, compact_rev: i64) -> WatchResponse {
    WatchResponse {
        header: header(current),
        watch_id: id.wire(),
        canceled: true,
        compact_revision: compact_rev,
        ..WatchResponse::default()
    }
}

/// Queues whole revisions from `w.next_rev` on; returns the number of records read.
fn catch_up(w: &mut Watcher, mvcc: &Mvcc, budget: usize, pending_max: usize) -> usize {
    let mut read = 0usize;
    if w.next_rev == mvcc.compact_rev {
        for e in &mvcc.compact_events {
            read += 1;
            if w.wants(e) {
                let shaped = w.shaped(e);
                w.pending.push_back(shaped);
            }
        }
        w.next_rev += 1;
    }
    let from = Revision::new(w.next_rev.max(mvcc.compact_rev + 1), 0);
    let mut last_main = None;
    for (rev, kv) in mvcc.records.range_from(from) {
        if last_main != Some(rev.main()) {
            // A revision boundary: the only place to stop.
            if let Some(m) = last_main {
                w.next_rev = m + 1;
            }
            if read >= budget || w.pending.len() >= pending_max {
                return read;
            }
            last_main = Some(rev.main());
        }
        read += 1;
        let is_put = !is_tombstone(&kv);
        if (is_put && w.no_put) || (!is_put && w.no_delete) || !w.end.contains(&w.key, &kv.key) {
            continue;
        }
        let ev = mvcc.event_of(rev, &kv, w.prev_kv);
        w.pending.push_back(ev);
    }
    w.next_rev = mvcc.current_rev + 1;
    read
}
