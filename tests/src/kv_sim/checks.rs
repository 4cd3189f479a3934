//! The invariants, checked as the simulation runs. See the module docs for the exact rules.

use std::collections::BTreeMap;

use bytes::Bytes;
use tally_core::NodeId;
use tally_kvstore::ApplyResponse;
use tally_kvstore::proto::KeyValue;

use super::clients::Pending;
use super::events::{Answer, Applied, Expect, Request};
use super::world::Clock;

/// A leader's decision to revoke an expired lease: when, on which clock, and how far its log
/// was committed and applied then.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Decision {
    pub(crate) node: NodeId,
    pub(crate) lease: i64,
    pub(crate) decided_ms: u64,
    pub(crate) clock: Clock,
    pub(crate) applied: u64,
    pub(crate) commit: u64,
}

/// An acknowledged keep-alive (or lease grant).
#[derive(Debug, Clone, Copy)]
struct KeepAlive {
    sent_ms: u64,
    acked_ms: u64,
    /// Orders it against revoke decisions made in the same step.
    acked_seq: u64,
    /// The entry that carried it, when it was replicated.
    index: Option<u64>,
}

/// What a run exercised, for the report.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub entries_applied: u64,
    pub snapshots_installed: u64,
    pub writes_acknowledged: u64,
    pub linearizable_reads: u64,
    pub serializable_reads: u64,
    pub keep_alives_local: u64,
    pub keep_alives_replicated: u64,
    /// Leader-local answers from a member that was not the trusted leader: not counted.
    pub keep_alives_untrusted: u64,
    /// Acknowledged renewals the revoking leader had committed but not yet applied (see the
    /// lease rule): counted, not failed.
    pub renewals_unapplied_at_revoke: u64,
    pub expiry_revokes_checked: u64,
    pub client_revokes: u64,
}

#[derive(Debug)]
pub(crate) struct Checks {
    seed: u64,
    /// The store hash after each index, and the member that first reported it.
    hashes: BTreeMap<u64, (u32, NodeId)>,
    /// The entry that made each revision.
    revision_entry: BTreeMap<i64, u64>,
    /// Every key at each revision, as the first member to reach it had it.
    states: BTreeMap<i64, Vec<KeyValue>>,
    acknowledged_revision_max: i64,
    /// Per lease: its TTL, and its acknowledged keep-alives (sent, acknowledged), true time.
    lease_ttl_ms: BTreeMap<i64, u64>,
    keep_alives: BTreeMap<i64, Vec<KeepAlive>>,
    /// Decisions by the request id of their revoke, with the sequence number they came at.
    decisions: BTreeMap<u64, (u64, Decision)>,
    /// Counts the events seen, to order acknowledgements and decisions.
    seq: u64,
    pub(crate) stats: Stats,
}

impl Checks {
    pub(crate) fn new(seed: u64) -> Checks {
        Checks {
            seed,
            hashes: BTreeMap::new(),
            revision_entry: BTreeMap::new(),
            // A new store starts at revision 1, empty.
            states: BTreeMap::from([(1, Vec::new())]),
            acknowledged_revision_max: 1,
            lease_ttl_ms: BTreeMap::new(),
            keep_alives: BTreeMap::new(),
            decisions: BTreeMap::new(),
            seq: 0,
            stats: Stats::default(),
        }
    }

    fn fail(&self, true_ms: u64, violation: String) -> ! {
        panic!(
            "{violation} (seed {seed}, at {true_ms} ms; replay with KV_SIM_SEED={seed})",
            seed = self.seed
        );
    }

    /// The newest revision any client has been answered at: a linearizable read sent after
    /// it must not return an older one.
    pub(crate) fn acknowledged_revision_max(&self) -> i64 {
        self.acknowledged_revision_max
    }

    fn state_at(&self, revision: i64, true_ms: u64) -> &[KeyValue] {
        match self.states.get(&revision) {
            Some(state) => state,
            None => self.fail(true_ms, format!("revision {revision} was never applied")),
        }
    }

    fn key_at(&self, key: &Bytes, revision: i64, true_ms: u64) -> Option<&KeyValue> {
        self.state_at(revision, true_ms)
            .iter()
            .find(|kv| kv.key == *key)
    }

    pub(crate) fn on_applied(&mut self, applied: &Applied, true_ms: u64) {
        self.seq += 1;
        let Applied {
            node,
            index,
            hash,
            revision_before,
            revision_after,
            ..
        } = *applied;
        if applied.snapshot {
            self.stats.snapshots_installed += 1;
        } else {
            self.stats.entries_applied += 1;
        }
        match self.hashes.get(&index) {
            Some(&(first, by)) if first != hash => self.fail(
                true_ms,
                format!(
                    "replicas diverge at index {index}: member {by} has store hash {first:08x}, \
                     member {node} has {hash:08x}"
                ),
            ),
            Some(_) => {}
            None => {
                self.hashes.insert(index, (hash, node));
            }
        }
        if !applied.snapshot && revision_after != revision_before {
            if revision_after != revision_before + 1 {
                self.fail(
                    true_ms,
                    format!(
                        "entry {index} on member {node} moved the revision from \
                         {revision_before} to {revision_after}"
                    ),
                );
            }
            match self.revision_entry.insert(revision_after, index) {
                Some(other) if other != index => self.fail(
                    true_ms,
                    format!(
                        "revision {revision_after} reused: entries {other} and {index} both made it"
                    ),
                ),
                _ => {}
            }
        }
        if let Some(kvs) = &applied.kvs_after {
            match self.states.get(&revision_after) {
                Some(state) if state != kvs => self.fail(
                    true_ms,
                    format!(
                        "member {node} at index {index} holds {kvs:?} at revision \
                         {revision_after}, another member held {state:?}"
                    ),
                ),
                Some(_) => {}
                None => {
                    self.states.insert(revision_after, kvs.clone());
                }
            }
        }
        if let Some((request_id, lease, left)) = &applied.revoked {
            let kvs = applied.kvs_after.as_deref().unwrap_or_default();
            if let Some(kv) = kvs
                .iter()
                .find(|kv| kv.lease == *lease || (kv.lease != 0 && !left.contains(&kv.lease)))
            {
                self.fail(
                    true_ms,
                    format!(
                        "member {node} revoked lease {lease:x} at index {index} but still holds \
                         {kv:?} attached to lease {:x}",
                        kv.lease
                    ),
                );
            }
            if let Some((decided_seq, decision)) = self.decisions.remove(request_id) {
                self.check_lease_rule(decided_seq, &decision, true_ms);
            }
        }
    }

    pub(crate) fn on_revoke_decided(&mut self, request_id: u64, decision: Decision) {
        self.seq += 1;
        self.decisions.insert(request_id, (self.seq, decision));
    }

    /// A lease revoked because it expired: no keep-alive acknowledged before the decision may
    /// still cover it on the deciding leader's clock.
    fn check_lease_rule(&mut self, decided_seq: u64, decision: &Decision, true_ms: u64) {
        self.stats.expiry_revokes_checked += 1;
        let Decision {
            node,
            lease,
            decided_ms,
            clock,
            applied,
            commit,
        } = *decision;
        let Some(&ttl_ms) = self.lease_ttl_ms.get(&lease) else {
            // Its grant was never acknowledged, so no client kept it alive.
            return;
        };
        let keep_alives = self.keep_alives.get(&lease).cloned().unwrap_or_default();
        for keep_alive in keep_alives {
            let KeepAlive {
                sent_ms,
                acked_ms,
                acked_seq,
                index,
            } = keep_alive;
            if acked_seq > decided_seq {
                continue;
            }
            let elapsed_ms = clock.now_ms(decided_ms) - clock.now_ms(sent_ms);
            if elapsed_ms >= ttl_ms {
                continue;
            }
            if index.is_some_and(|i| applied < i && i <= commit) {
                // The leader decided with this renewal committed but its own write of it still
                // in progress: tally's replicated keep-alive allows this, etcd's does not.
                self.stats.renewals_unapplied_at_revoke += 1;
            } else {
                self.fail(
                    true_ms,
                    format!(
                        "lease {lease:x} (TTL {ttl_ms} ms) revoked as expired by leader \
                         {node} at {decided_ms} ms, though a keep-alive sent at {sent_ms} ms \
                         was acknowledged at {acked_ms} ms{via}: only {elapsed_ms} ms had \
                         passed on the leader's clock since",
                        via =
                            index.map_or(" by a primary".to_string(), |i| format!(" (entry {i})")),
                    ),
                );
            }
        }
    }

    /// A client got `answer` to `pending`: check it against the history.
    pub(crate) fn on_answer(
        &mut self,
        pending: &Pending,
        index: Option<u64>,
        answer: &Answer,
        true_ms: u64,
    ) {
        self.seq += 1;
        let node = pending.node;
        match (&pending.request, answer) {
            (request, Answer::Applied(Ok(response))) => {
                let revision = response_revision(response);
                self.acknowledged_revision_max = self.acknowledged_revision_max.max(revision);
                self.check_write(request, response, revision, pending.sent_ms, index, true_ms);
            }
            (Request::Range { key, linearizable }, Answer::Range(Ok(response))) => {
                let revision = response.header.as_ref().map_or(0, |h| h.revision);
                if *linearizable {
                    self.stats.linearizable_reads += 1;
                    if revision < pending.floor_revision {
                        self.fail(
                            true_ms,
                            format!(
                                "linearizable read of {key:?} at member {node} returned \
                                 revision {revision}, below revision {} acknowledged before \
                                 it was sent",
                                pending.floor_revision
                            ),
                        );
                    }
                } else {
                    self.stats.serializable_reads += 1;
                }
                let want: Vec<KeyValue> = self
                    .key_at(key, revision, true_ms)
                    .cloned()
                    .into_iter()
                    .collect();
                if response.kvs != want {
                    self.fail(
                        true_ms,
                        format!(
                            "read of {key:?} at member {node} at revision {revision} got {:?}, \
                             the history has {want:?}",
                            response.kvs
                        ),
                    );
                }
            }
            (
                Request::KeepAlive { lease },
                Answer::KeepAlive {
                    ttl_secs,
                    leader_local,
                    trusted,
                },
            ) if *ttl_secs > 0 => {
                if !trusted {
                    self.stats.keep_alives_untrusted += 1;
                    return;
                }
                if *leader_local {
                    self.stats.keep_alives_local += 1;
                } else {
                    self.stats.keep_alives_replicated += 1;
                }
                self.record_keep_alive(*lease, pending.sent_ms, index, true_ms);
            }
            _ => {}
        }
    }

    fn record_keep_alive(&mut self, lease: i64, sent_ms: u64, index: Option<u64>, true_ms: u64) {
        let keep_alive = KeepAlive {
            sent_ms,
            acked_ms: true_ms,
            acked_seq: self.seq,
            index,
        };
        self.keep_alives.entry(lease).or_default().push(keep_alive);
    }

    /// An acknowledged write is in the history at the revision it was answered with.
    fn check_write(
        &mut self,
        request: &Request,
        response: &ApplyResponse,
        revision: i64,
        sent_ms: u64,
        index: Option<u64>,
        true_ms: u64,
    ) {
        let holds = |checks: &Checks, key: &Bytes, revision: i64, value: &Bytes| {
            checks
                .key_at(key, revision, true_ms)
                .is_some_and(|kv| kv.value == *value && kv.mod_revision == revision)
        };
        let broken = match (request, response) {
            (Request::Put { key, value, .. }, ApplyResponse::Put(_)) => {
                self.stats.writes_acknowledged += 1;
                (!holds(self, key, revision, value)).then(|| format!("put {key:?}={value:?}"))
            }
            (Request::Delete { key }, ApplyResponse::DeleteRange(r)) => {
                self.stats.writes_acknowledged += 1;
                let gone = self.key_at(key, revision, true_ms).is_none();
                // A delete that found the key made this revision; one that did not, made none.
                let existed = r.deleted > 0 && self.key_at(key, revision - 1, true_ms).is_some();
                (!gone || (r.deleted > 0) != existed)
                    .then(|| format!("delete {key:?} ({} deleted)", r.deleted))
            }
            (Request::CompareAndSet { key, expect, value }, ApplyResponse::Txn(r)) => {
                self.stats.writes_acknowledged += u64::from(r.succeeded);
                let before = if r.succeeded { revision - 1 } else { revision };
                let kv = self.key_at(key, before, true_ms);
                let matched = match expect {
                    Expect::ModRevision(m) => kv.map_or(0, |kv| kv.mod_revision) == *m,
                    Expect::Value(v) => kv.is_some_and(|kv| kv.value == *v),
                };
                let wrote = !r.succeeded || holds(self, key, revision, value);
                (matched != r.succeeded || !wrote).then(|| {
                    format!(
                        "compare-and-set {key:?} {expect:?} -> {value:?} (succeeded: {})",
                        r.succeeded
                    )
                })
            }
            (Request::LeaseGrant { .. }, ApplyResponse::LeaseGrant(r)) => {
                // The grant starts the lease's clock like a keep-alive.
                self.lease_ttl_ms
                    .insert(r.id, u64::try_from(r.ttl).unwrap_or(0) * 1000);
                self.record_keep_alive(r.id, sent_ms, index, true_ms);
                None
            }
            (Request::LeaseRevoke { .. }, ApplyResponse::LeaseRevoke(_)) => {
                self.stats.client_revokes += 1;
                None
            }
            _ => None,
        };
        if let Some(write) = broken {
            let state = self.state_at(revision, true_ms).to_vec();
            self.fail(
                true_ms,
                format!(
                    "acknowledged {write} at revision {revision}, but that revision holds {state:?}"
                ),
            );
        }
    }
}

fn response_revision(response: &ApplyResponse) -> i64 {
    let header = match response {
        ApplyResponse::Put(r) => &r.header,
        ApplyResponse::DeleteRange(r) => &r.header,
        ApplyResponse::Txn(r) => &r.header,
        ApplyResponse::Range(r) => &r.header,
        ApplyResponse::Compaction(r) => &r.header,
        ApplyResponse::LeaseGrant(r) => &r.header,
        ApplyResponse::LeaseRevoke(r) => &r.header,
        ApplyResponse::LeaseRenew(r) => &r.header,
        _ => &None,
    };
    header.as_ref().map_or(0, |h| h.revision)
}
