//! One member's application side, glued to its Raft node the way tallyd glues them
//! (runtime-mio's `server/rpc/lease.rs`, `server/apply.rs` and the event loop's `on_tick` and
//! `on_leader_changed`): a real `KvStore`, the waiters of proposals, linearizable reads, and
//! the lessor's promotion, keep-alives and expiry on this member's own clock.

use std::collections::BTreeMap;

use bytes::Bytes;
use prost::Message as _;
use tally_core::{Entry, EntryKind, NO_NODE, Node, NodeId, Snapshot};
use tally_kvstore::proto::internal_request::Request as Internal;
use tally_kvstore::proto::{
    CompactionRequest, Compare, CompareResult, CompareTarget, DeleteRangeRequest, InternalRequest,
    LeaseGrantRequest, LeaseKeepAliveRequest, LeaseRevokeRequest, PutRequest, RangeRequest,
    RequestOp, TxnRequest, compare, request_op,
};
use tally_kvstore::{ApplyResponse, KvConfig, KvError, KvStore};

use super::events::{Answer, Applied, Expect, OpId, Request, SimEvent};

/// tallyd's bound on revokes proposed per tick.
const LEASE_REVOKES_PER_TICK_MAX: usize = 64;
/// tallyd's request timeout: waiters and pending revokes are dropped after it.
const REQUEST_TIMEOUT_MS: u64 = 5_000;

/// A client waiting for its proposal to be applied here.
#[derive(Debug, Clone, Copy)]
struct Waiter {
    op: OpId,
    keep_alive: bool,
    deadline_ms: u64,
}

/// The whole keyspace, for the checks' view of the state.
pub(crate) fn all_keys() -> RangeRequest {
    RangeRequest {
        key: Bytes::from_static(&[0]),
        range_end: Bytes::from_static(&[0]),
        ..RangeRequest::default()
    }
}

#[derive(Debug)]
pub(crate) struct Replica {
    id: NodeId,
    kv: KvStore,
    /// The Raft index applied here (entries and snapshots): a read waits for its read index.
    applied: u64,
    /// The leader as this member last heard it.
    leader: NodeId,
    next_request_id: u64,
    waiters: BTreeMap<u64, Waiter>,
    /// Revokes proposed and not yet timed out, by lease: the proposal time on this clock.
    pending_revokes: BTreeMap<i64, u64>,
    /// Linearizable reads waiting for their read index: request id -> (op, key, deadline).
    /// A leader change drops the core's pending reads, so these time out like waiters.
    reads_unconfirmed: BTreeMap<u64, (OpId, Bytes, u64)>,
    /// Reads whose read index is known, waiting for it to be applied: (index, op, key).
    reads_confirmed: Vec<(u64, OpId, Bytes)>,
}

impl Replica {
    /// A member starting from its snapshot (empty on a fresh disk). `incarnation` counts its
    /// starts, so request ids never repeat across restarts: an entry proposed before a crash
    /// can still be applied after it and must not answer a new client.
    pub(crate) fn start(id: NodeId, incarnation: u64, snapshot: &Snapshot) -> Replica {
        assert!(
            id < 1 << 16 && incarnation < 1 << 16,
            "ids fit their fields"
        );
        let mut kv = KvStore::new(KvConfig::default());
        if snapshot.meta().index() > 0 {
            kv.restore(&mut &snapshot.data()[..])
                .expect("a snapshot this simulation wrote restores");
        }
        Replica {
            id,
            kv,
            applied: snapshot.meta().index(),
            leader: NO_NODE,
            next_request_id: (id << 48) | (incarnation << 32),
            waiters: BTreeMap::new(),
            pending_revokes: BTreeMap::new(),
            reads_unconfirmed: BTreeMap::new(),
            reads_confirmed: Vec::new(),
        }
    }

    pub(crate) fn applied(&self) -> u64 {
        self.applied
    }

    pub(crate) fn hash(&self) -> u32 {
        self.kv.hash()
    }

    pub(crate) fn lease_count(&self) -> usize {
        self.kv.lease_leases().leases.len()
    }

    fn next_request_id(&mut self) -> u64 {
        self.next_request_id += 1;
        self.next_request_id
    }

    /// As tallyd: a new leader promotes its lessor, extending every lease by an election
    /// timeout. Unlike tallyd's loop, a member that stops leading demotes however it learns
    /// it, also when it steps down to "no leader known": a lessor left primary would keep
    /// answering keep-alives from its own clock that the real leader never sees.
    pub(crate) fn on_leader_changed(&mut self, leader: NodeId, now_ms: u64, extend_ms: u64) {
        self.leader = leader;
        if leader == self.id {
            self.kv.promote(now_ms, extend_ms);
        } else if self.kv.is_primary() {
            self.kv.demote();
        }
    }

    /// tallyd's `on_tick`: the clock moves, and the leader proposes revoking expired leases.
    pub(crate) fn on_tick(&mut self, node: &mut Node, now_ms: u64, events: &mut Vec<SimEvent>) {
        self.kv.set_now_ms(now_ms);
        self.waiters.retain(|_, w| w.deadline_ms > now_ms);
        self.reads_unconfirmed
            .retain(|_, (_, _, deadline_ms)| *deadline_ms > now_ms);
        if self.leader != self.id {
            return;
        }
        self.pending_revokes
            .retain(|_, since_ms| now_ms.saturating_sub(*since_ms) < REQUEST_TIMEOUT_MS);
        for lease in self.kv.expired_leases(now_ms, LEASE_REVOKES_PER_TICK_MAX) {
            if self.pending_revokes.contains_key(&lease) {
                continue;
            }
            let revoke = Internal::LeaseRevoke(LeaseRevokeRequest { id: lease });
            if let Ok(request_id) = self.propose(node, revoke) {
                self.pending_revokes.insert(lease, now_ms);
                events.push(SimEvent::RevokeDecided {
                    node: self.id,
                    request_id,
                    lease,
                    applied: self.applied,
                    commit: node.status().commit(),
                });
            }
        }
    }

    fn propose(&mut self, node: &mut Node, request: Internal) -> Result<u64, String> {
        let id = self.next_request_id();
        let data = InternalRequest {
            id,
            header: None,
            request: Some(request),
        }
        .encode_to_vec();
        node.propose(Bytes::from(data))
            .map(|()| id)
            .map_err(|e| format!("propose: {e:?}"))
    }

    /// A client's request arrives here. `trusted_leader` is the simulation's judgement of
    /// this member's leadership, recorded with a leader-local keep-alive answer.
    pub(crate) fn submit(
        &mut self,
        node: &mut Node,
        op: OpId,
        request: Request,
        now_ms: u64,
        trusted_leader: bool,
        events: &mut Vec<SimEvent>,
    ) {
        let answer = |answer| SimEvent::Answer {
            op,
            index: None,
            answer,
        };
        let internal = match request {
            Request::Range {
                key,
                linearizable: false,
            } => {
                let response = self.kv.range(&single_key(key));
                events.push(answer(Answer::Range(response)));
                return;
            }
            Request::Range {
                key,
                linearizable: true,
            } => {
                let request_id = self.next_request_id();
                match node.read_index(request_id) {
                    Ok(()) => {
                        let deadline_ms = now_ms + REQUEST_TIMEOUT_MS;
                        self.reads_unconfirmed
                            .insert(request_id, (op, key, deadline_ms));
                    }
                    Err(e) => events.push(answer(Answer::Refused(format!("read index: {e:?}")))),
                }
                return;
            }
            Request::KeepAlive { lease } if self.kv.is_primary() => {
                // tallyd answers a keep-alive at the lease's primary from its own clock.
                let ttl_secs = self
                    .kv
                    .lease_keep_alive(lease, now_ms)
                    .map_or(0, |response| response.ttl);
                events.push(answer(Answer::KeepAlive {
                    ttl_secs,
                    leader_local: true,
                    trusted: trusted_leader,
                }));
                return;
            }
            Request::KeepAlive { lease } => {
                // Anywhere else it is replicated, so the primary renews it when it applies it.
                Internal::LeaseRenew(LeaseKeepAliveRequest { id: lease })
            }
            Request::Put { key, value, lease } => Internal::Put(PutRequest {
                key,
                value,
                lease,
                ..PutRequest::default()
            }),
            Request::Delete { key } => Internal::DeleteRange(DeleteRangeRequest {
                key,
                ..DeleteRangeRequest::default()
            }),
            Request::CompareAndSet { key, expect, value } => {
                Internal::Txn(compare_and_set(key, expect, value))
            }
            Request::LeaseGrant { ttl_secs } => {
                // As tallyd: the proposer picks the ID, so every member assigns the same one.
                let id = (self.next_request_id() & 0x7fff_ffff_ffff_ffff) as i64;
                Internal::LeaseGrant(LeaseGrantRequest { ttl: ttl_secs, id })
            }
            Request::LeaseRevoke { lease } => {
                Internal::LeaseRevoke(LeaseRevokeRequest { id: lease })
            }
            Request::Compact { revision } => Internal::Compaction(CompactionRequest {
                revision,
                physical: false,
            }),
        };
        let keep_alive = matches!(internal, Internal::LeaseRenew(_));
        match self.propose(node, internal) {
            Ok(request_id) => {
                let waiter = Waiter {
                    op,
                    keep_alive,
                    deadline_ms: now_ms + REQUEST_TIMEOUT_MS,
                };
                self.waiters.insert(request_id, waiter);
            }
            Err(e) => events.push(answer(Answer::Refused(e))),
        }
    }

    /// tallyd's `apply_entries`: the clock first (a replicated keep-alive restarts the lease's
    /// clock at the primary's apply time), then each entry, answering its waiter.
    pub(crate) fn apply_entries(
        &mut self,
        entries: &[Entry],
        now_ms: u64,
        events: &mut Vec<SimEvent>,
    ) {
        self.kv.set_now_ms(now_ms);
        for entry in entries {
            assert_eq!(
                entry.index(),
                self.applied + 1,
                "member {} applies entries in order",
                self.id
            );
            self.applied = entry.index();
            let revision_before = self.kv.revision();
            let mut revoked = None;
            let mut answer = None;
            // Membership entries are the core's business; the store never sees them.
            if entry.kind() == EntryKind::Normal {
                let request = InternalRequest::decode(&entry.data()[..]).unwrap_or_default();
                let outcome = self.kv.apply(entry.index(), entry.data().clone());
                if let (Some(Internal::LeaseRevoke(r)), Ok(ApplyResponse::LeaseRevoke(_))) =
                    (&request.request, outcome.result())
                {
                    let left = self.kv.lease_leases().leases.iter().map(|l| l.id).collect();
                    revoked = Some((request.id, r.id, left));
                }
                if let Some(waiter) = self.waiters.remove(&outcome.request_id()) {
                    answer = Some((waiter.op, waiter_answer(waiter, outcome.into_result())));
                }
            }
            // The checks see the entry before its answer.
            self.report_applied(revision_before, revoked, false, events);
            if let Some((op, answer)) = answer {
                events.push(SimEvent::Answer {
                    op,
                    index: Some(entry.index()),
                    answer,
                });
            }
        }
        self.serve_reads(events);
    }

    fn report_applied(
        &self,
        revision_before: i64,
        revoked: Option<(u64, i64, Vec<i64>)>,
        snapshot: bool,
        events: &mut Vec<SimEvent>,
    ) {
        let revision_after = self.kv.revision();
        let kvs_after =
            (revision_after != revision_before || revoked.is_some() || snapshot).then(|| {
                self.kv
                    .range(&all_keys())
                    .expect("a range at the current revision")
                    .kvs
            });
        events.push(SimEvent::Applied(Applied {
            node: self.id,
            index: self.applied,
            hash: self.kv.hash(),
            revision_before,
            revision_after,
            kvs_after,
            revoked,
            snapshot,
        }));
    }

    /// A snapshot from the leader replaces the store.
    pub(crate) fn install_snapshot(&mut self, snapshot: &Snapshot, events: &mut Vec<SimEvent>) {
        let revision_before = self.kv.revision();
        self.kv
            .restore(&mut &snapshot.data()[..])
            .expect("a snapshot another member wrote restores");
        self.applied = snapshot.meta().index();
        self.report_applied(revision_before, None, true, events);
        self.serve_reads(events);
    }

    /// The store's snapshot at `index`, for the core to compact its log behind.
    pub(crate) fn snapshot_bytes(&self, index: u64) -> Bytes {
        assert_eq!(
            self.applied, index,
            "snapshot requested at the applied index"
        );
        let mut data = Vec::new();
        self.kv
            .snapshot(&mut data)
            .expect("writing to memory does not fail");
        Bytes::from(data)
    }

    pub(crate) fn read_ready(&mut self, request: u64, index: u64, events: &mut Vec<SimEvent>) {
        if let Some((op, key, _)) = self.reads_unconfirmed.remove(&request) {
            self.reads_confirmed.push((index, op, key));
            self.serve_reads(events);
        }
    }

    fn serve_reads(&mut self, events: &mut Vec<SimEvent>) {
        let applied = self.applied;
        let (ready, waiting) = std::mem::take(&mut self.reads_confirmed)
            .into_iter()
            .partition(|(index, _, _)| *index <= applied);
        self.reads_confirmed = waiting;
        for (_, op, key) in ready {
            events.push(SimEvent::Answer {
                op,
                index: None,
                answer: Answer::Range(self.kv.range(&single_key(key))),
            });
        }
    }
}

/// What a waiter's client is told when its entry is applied here: a keep-alive gets the
/// lease's TTL (0 once the lease is gone), as tallyd answers on the keep-alive stream.
fn waiter_answer(waiter: Waiter, result: Result<ApplyResponse, KvError>) -> Answer {
    if !waiter.keep_alive {
        return Answer::Applied(result);
    }
    let ttl_secs = match result {
        Ok(ApplyResponse::LeaseRenew(response)) => response.ttl,
        _ => 0,
    };
    Answer::KeepAlive {
        ttl_secs,
        leader_local: false,
        trusted: true,
    }
}

fn single_key(key: Bytes) -> RangeRequest {
    RangeRequest {
        key,
        ..RangeRequest::default()
    }
}

/// A txn that puts `value` if the key still has the expected mod revision (or value), and
/// reads the key otherwise.
fn compare_and_set(key: Bytes, expect: Expect, value: Bytes) -> TxnRequest {
    let (target, union) = match expect {
        Expect::ModRevision(revision) => (
            CompareTarget::Mod,
            compare::TargetUnion::ModRevision(revision),
        ),
        Expect::Value(value) => (CompareTarget::Value, compare::TargetUnion::Value(value)),
    };
    let op = |request| RequestOp {
        request: Some(request),
    };
    TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal as i32,
            target: target as i32,
            key: key.clone(),
            range_end: Bytes::new(),
            target_union: Some(union),
        }],
        success: vec![op(request_op::Request::RequestPut(PutRequest {
            key: key.clone(),
            value,
            ..PutRequest::default()
        }))],
        failure: vec![op(request_op::Request::RequestRange(single_key(key)))],
    }
}
