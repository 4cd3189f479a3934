//! [`KvStore`]: the state machine the runtime applies committed entries to.

use std::collections::BTreeSet;

use bytes::Bytes;

use crate::apply::PendingApply;
use crate::auth::AuthStore;
use crate::config::KvConfig;
use crate::error::KvError;
use crate::lease::Lessor;
use crate::mvcc::exec;
use crate::mvcc::range;
use crate::mvcc::store::Mvcc;
use crate::mvcc::txn;
use crate::mvcc::write::WriteTxn;
use crate::proto::*;
use crate::watch::{WatchHub, WatchId};

/// etcd's MVCC key-value store as a deterministic state machine. See the crate docs.
#[derive(Debug)]
pub struct KvStore {
    pub(crate) config: KvConfig,
    pub(crate) mvcc: Mvcc,
    pub(crate) lessor: Lessor,
    pub(crate) watch: WatchHub,
    pub(crate) applied_index: u64,
    pub(crate) alarms: BTreeSet<(u64, i32)>,
    /// A snapshot copy is being taken (see `snapshot_copy.rs`): compaction waits.
    pub(crate) copying: bool,
    /// Bumped by a restore, which voids a copy in progress.
    pub(crate) copy_epoch: u64,
    /// Users, roles and permissions.
    pub(crate) auth: AuthStore,
    /// An entry applied in part (see `apply.rs`).
    pub(crate) pending: Option<Box<PendingApply>>,
}

/// Figures for the Status RPC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreStatus {
    revision: i64,
    compact_revision: i64,
    raft_applied_index: u64,
    db_size_bytes: u64,
    key_count: u64,
}

impl StoreStatus {
    /// The current revision.
    pub fn revision(&self) -> i64 {
        self.revision
    }
    /// The compacted revision (0 before any compaction).
    pub fn compact_revision(&self) -> i64 {
        self.compact_revision
    }
    /// The last raft index applied.
    pub fn raft_applied_index(&self) -> u64 {
        self.raft_applied_index
    }
    /// Approximate bytes held by keys, values and their bookkeeping, history included.
    pub fn db_size_bytes(&self) -> u64 {
        self.db_size_bytes
    }
    /// Keys that exist at the current revision.
    pub fn key_count(&self) -> u64 {
        self.key_count
    }
}

pub(crate) fn header(rev: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision: rev,
        ..ResponseHeader::default()
    })
}

impl KvStore {
    /// An empty store at revision 1, as a new etcd cluster starts.
    pub fn new(config: KvConfig) -> Self {
        let lessor = Lessor::new(config.lease_ttl_secs_min());
        let watch = WatchHub::new(
            config.watch_pending_events_max(),
            config.watch_fragment_bytes_max(),
            config.watchers_max(),
        );
        KvStore {
            config,
            mvcc: Mvcc::new(),
            lessor,
            watch,
            applied_index: 0,
            alarms: BTreeSet::new(),
            copying: false,
            copy_epoch: 0,
            auth: AuthStore::default(),
            pending: None,
        }
    }

    /// The last raft index applied.
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// The current revision.
    pub fn revision(&self) -> i64 {
        self.mvcc.current_rev
    }

    /// The compacted revision: reads below it fail.
    pub fn compacted_revision(&self) -> i64 {
        self.mvcc.compact_rev
    }

    /// The store's settings.
    pub fn config(&self) -> &KvConfig {
        &self.config
    }

    /// Runs `f` as one write of `request` (its bytes, or empty) at the next revision.
    fn write<R>(&mut self, request: Bytes, f: impl FnOnce(&mut WriteTxn<'_>) -> R) -> (R, i64) {
        self.assert_no_pending_apply("a direct write");
        let collect = !self.watch.is_empty();
        let mut tx = WriteTxn::begin(&mut self.mvcc, &mut self.lessor, collect, request);
        let out = f(&mut tx);
        let (rev, events) = tx.end();
        if !events.is_empty() {
            self.watch.notify(rev, &events);
        }
        (out, rev)
    }

    /// Serves a range at the current state. Serializable and linearizable reads are the same
    /// here: the runtime decides when to call.
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse, KvError> {
        range::range(&self.mvcc, req, self.mvcc.current_rev)
    }

    /// Writes a key at a new revision. [`KvStore::apply`] calls it for a committed `Put`; a
    /// caller without replication may call it directly.
    pub fn put(&mut self, req: &PutRequest) -> Result<PutResponse, KvError> {
        self.put_of(req, Bytes::new())
    }

    /// [`KvStore::put`] of a request decoded from `request_bytes`, whose key and value the
    /// record keeps as one slice of those bytes.
    pub(crate) fn put_of(
        &mut self,
        req: &PutRequest,
        request_bytes: Bytes,
    ) -> Result<PutResponse, KvError> {
        txn::validate_put(req)?;
        txn::check_put(&self.mvcc, &self.lessor, req, self.mvcc.current_rev)?;
        let (mut resp, rev) = self.write(request_bytes, |tx| exec::exec_put(tx, req));
        resp.header = header(rev);
        Ok(resp)
    }

    /// Deletes a key or a range at a new revision (no new revision when nothing matched).
    pub fn delete_range(
        &mut self,
        req: &DeleteRangeRequest,
    ) -> Result<DeleteRangeResponse, KvError> {
        txn::validate_delete(req)?;
        Ok(self.delete_range_whole(req))
    }

    /// Runs a transaction: its compares, then the success or failure operations, all in one
    /// revision (no new revision when it only reads).
    pub fn txn(&mut self, req: &TxnRequest) -> Result<TxnResponse, KvError> {
        self.txn_whole(req)
    }

    /// The logical half of a compaction: from now on reads below `revision` fail. The physical
    /// half runs in [`KvStore::compact_step`].
    pub fn compact(&mut self, req: &CompactionRequest) -> Result<CompactionResponse, KvError> {
        self.assert_no_pending_apply("compact");
        self.mvcc.compact(req.revision)?;
        self.watch.on_compact(self.mvcc.compact_rev);
        Ok(CompactionResponse {
            header: header(self.mvcc.current_rev),
        })
    }

    /// Whether [`Self::compact_step`] would do work now: a physical compaction is under way and
    /// no snapshot copy holds it back. A runtime keeps stepping without waiting for other
    /// events while this holds.
    pub fn compaction_step_ready(&self) -> bool {
        self.mvcc.job.is_some() && !self.copying && self.pending.is_none()
    }

    /// Physically compacts up to `budget_keys` keys (fewer where keys have long histories).
    /// Returns whether work remains. Call it between applies until it returns false.
    pub fn compact_step(&mut self, budget_keys: usize) -> bool {
        self.assert_no_pending_apply("compact_step");
        if !self.compaction_step_ready() {
            // Nothing to do, or a snapshot copy has yet to take the revisions it would remove.
            return self.mvcc.job.is_some();
        }
        self.mvcc.compact_step(budget_keys)
    }

    /// Whether the physical compaction at `rev` (or a later one) has finished.
    pub fn compaction_done(&self, rev: i64) -> bool {
        self.mvcc.compaction_done_rev >= rev
    }

    /// Grants a lease. ID 0 asks for one: it is derived deterministically from the store.
    pub fn lease_grant(&mut self, req: &LeaseGrantRequest) -> Result<LeaseGrantResponse, KvError> {
        let (id, ttl) = self.lessor.grant(req.id, req.ttl)?;
        Ok(LeaseGrantResponse {
            header: header(self.mvcc.current_rev),
            id,
            ttl,
            error: String::new(),
        })
    }

    /// Revokes a lease and deletes its keys, all in one revision.
    pub fn lease_revoke(
        &mut self,
        req: &LeaseRevokeRequest,
    ) -> Result<LeaseRevokeResponse, KvError> {
        self.lease_revoke_whole(req.id)
    }

    /// Records remaining TTLs, so that a new leader resumes them rather than the full TTL.
    pub fn lease_checkpoint(&mut self, req: &LeaseCheckpointRequest) -> LeaseCheckpointResponse {
        for c in &req.checkpoints {
            self.lessor.checkpoint(c.id, c.remaining_ttl);
        }
        LeaseCheckpointResponse {
            header: header(self.mvcc.current_rev),
        }
    }

    /// A keep-alive replicated through Raft (one that reached a member that is not the lease's
    /// primary): applied at the same index everywhere, it restarts the lease's clock on the
    /// primary at the store's current time ([`KvStore::set_now_ms`]) and clears the checkpointed
    /// remaining TTL on every member.
    pub fn lease_renew(
        &mut self,
        req: &LeaseKeepAliveRequest,
    ) -> Result<LeaseKeepAliveResponse, KvError> {
        let ttl = self.lessor.renew(req.id)?;
        Ok(LeaseKeepAliveResponse {
            header: header(self.mvcc.current_rev),
            id: req.id,
            ttl,
        })
    }

    /// Leader-local keep-alive: restarts the lease's clock at `now_ms`. When the runtime uses
    /// checkpoints, it proposes one for this lease afterwards (as etcd does on renew), or other
    /// members keep the older, shorter remaining TTL.
    pub fn lease_keep_alive(
        &mut self,
        id: i64,
        now_ms: u64,
    ) -> Result<LeaseKeepAliveResponse, KvError> {
        let ttl = self.lessor.keep_alive(id, now_ms)?;
        Ok(LeaseKeepAliveResponse {
            header: header(self.mvcc.current_rev),
            id,
            ttl,
        })
    }

    /// etcd's TimeToLive answer; an unknown lease gets TTL -1, as etcd's server answers.
    pub fn lease_time_to_live(
        &mut self,
        req: &LeaseTimeToLiveRequest,
        now_ms: u64,
    ) -> LeaseTimeToLiveResponse {
        self.lessor.set_now(now_ms);
        let Some((granted, remaining)) = self.lessor.ttls(req.id, now_ms) else {
            return LeaseTimeToLiveResponse {
                header: header(self.mvcc.current_rev),
                id: req.id,
                ttl: -1,
                ..LeaseTimeToLiveResponse::default()
            };
        };
        let keys = if req.keys {
            self.lessor.keys_of(req.id).unwrap_or_default()
        } else {
            Vec::new()
        };
        LeaseTimeToLiveResponse {
            header: header(self.mvcc.current_rev),
            id: req.id,
            ttl: remaining,
            granted_ttl: granted,
            keys,
        }
    }

    /// On the primary: a checkpoint of every lease's remaining TTL (at most `max` leases), for
    /// the runtime to propose now and then, so that a new leader resumes the TTLs instead of
    /// restarting them (etcd's lease checkpointing). Empty on a follower.
    pub fn lease_checkpoints(&self, now_ms: u64, max: usize) -> LeaseCheckpointRequest {
        LeaseCheckpointRequest {
            checkpoints: self
                .lessor
                .remaining(now_ms, max)
                .into_iter()
                .map(|(id, remaining_ttl)| LeaseCheckpoint { id, remaining_ttl })
                .collect(),
        }
    }

    /// Every lease, by ID.
    pub fn lease_leases(&self) -> LeaseLeasesResponse {
        LeaseLeasesResponse {
            header: header(self.mvcc.current_rev),
            leases: self
                .lessor
                .leases
                .keys()
                .map(|id| LeaseStatus { id: *id })
                .collect(),
        }
    }

    /// On the primary: leases expired at `now_ms`, earliest first, at most `max`. The runtime
    /// proposes a LeaseRevoke for each. Empty on a follower.
    pub fn expired_leases(&mut self, now_ms: u64, max: usize) -> Vec<i64> {
        self.lessor.expired(now_ms, max)
    }

    /// This member became leader: every lease expires `extend_ms` plus its remaining TTL from
    /// `now_ms` (etcd's `lessor.Promote(extend)`).
    pub fn promote(&mut self, now_ms: u64, extend_ms: u64) {
        self.lessor.promote(now_ms, extend_ms);
    }

    /// This member stopped being leader: its leases stop expiring.
    pub fn demote(&mut self) {
        self.lessor.demote();
    }

    /// Whether this store's lessor is the primary.
    pub fn is_primary(&self) -> bool {
        self.lessor.is_primary()
    }

    /// Tells the store the time, for leases granted by the next applies.
    pub fn set_now_ms(&mut self, now_ms: u64) {
        self.lessor.set_now(now_ms);
    }

    /// Applies etcd's Alarm request (GET, ACTIVATE, DEACTIVATE).
    pub fn alarm(&mut self, req: &AlarmRequest) -> AlarmResponse {
        let member = |m: u64, a: i32| AlarmMember {
            member_id: m,
            alarm: a,
        };
        let alarms = match AlarmAction::try_from(req.action) {
            Ok(AlarmAction::Activate) if req.alarm != AlarmType::None as i32 => {
                self.alarms.insert((req.member_id, req.alarm));
                vec![member(req.member_id, req.alarm)]
            }
            Ok(AlarmAction::Deactivate) => {
                if self.alarms.remove(&(req.member_id, req.alarm)) {
                    vec![member(req.member_id, req.alarm)]
                } else {
                    Vec::new()
                }
            }
            Ok(AlarmAction::Get) => self
                .alarms
                .iter()
                .filter(|(_, a)| req.alarm == AlarmType::None as i32 || *a == req.alarm)
                .map(|(m, a)| member(*m, *a))
                .collect(),
            _ => Vec::new(),
        };
        AlarmResponse {
            header: header(self.mvcc.current_rev),
            alarms,
        }
    }

    /// Registers a watcher; its `created` response comes out of [`KvStore::poll_watch_event`].
    pub fn watch_create(&mut self, req: &WatchCreateRequest) -> Result<WatchId, KvError> {
        // While an entry is applied in part, a watcher from the revision it writes catches up
        // from history once it is done: that revision's events were not collected for it.
        self.watch.create(req, &self.mvcc, self.pending.is_some())
    }

    /// Removes a watcher; its `canceled` response comes out of the drain.
    pub fn watch_cancel(&mut self, id: WatchId) -> Result<(), KvError> {
        self.watch.cancel(id, self.mvcc.current_rev)
    }

    /// Asks for a progress response: sent at once when the watcher is caught up, else with
    /// the batch that catches it up.
    pub fn request_progress(&mut self, id: WatchId) -> Result<(), KvError> {
        self.watch.request_progress(id, self.mvcc.current_rev)
    }

    /// Queues progress notifications for idle watchers that asked for them; the runtime calls
    /// it on its progress interval (etcd: 10 minutes).
    pub fn progress_notify_tick(&mut self) {
        self.watch.progress_tick(self.mvcc.current_rev);
    }

    /// Catches unsynced watchers up from history, reading about `budget_records` records.
    /// Returns whether unsynced watchers remain.
    pub fn sync_watchers_step(&mut self, budget_records: usize) -> bool {
        self.assert_no_pending_apply("sync_watchers_step");
        self.watch.sync_step(&self.mvcc, budget_records)
    }

    /// Whether some watcher waits for [`KvStore::sync_watchers_step`].
    pub fn has_unsynced_watchers(&self) -> bool {
        self.watch.has_unsynced()
    }

    /// The next watch response to send. See the crate docs for the order.
    #[must_use]
    pub fn poll_watch_event(&mut self) -> Option<(WatchId, WatchResponse)> {
        self.watch
            .poll(self.mvcc.current_rev, self.mvcc.compact_rev)
    }

    /// etcd's HashKV: a hash of every kept revision at or below `revision` (0: current).
    pub fn hash_kv(&self, revision: i64) -> Result<HashKvResponse, KvError> {
        let (hash, rev) = self.mvcc.hash_kv(revision)?;
        Ok(HashKvResponse {
            header: header(self.mvcc.current_rev),
            hash,
            compact_revision: self.mvcc.compact_rev,
            hash_revision: rev,
        })
    }

    /// Figures for the Status RPC.
    pub fn status(&self) -> StoreStatus {
        StoreStatus {
            revision: self.mvcc.current_rev,
            compact_revision: self.mvcc.compact_rev,
            raft_applied_index: self.applied_index,
            db_size_bytes: self.mvcc.data_bytes,
            key_count: self.mvcc.live_keys,
        }
    }
}
