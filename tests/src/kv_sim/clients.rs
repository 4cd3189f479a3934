//! The clients: a random mix of requests to random members, and lease holders that send
//! keep-alives to random members on a timer.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use tally_core::NodeId;
use tally_core::testing::SimRng;
use tally_kvstore::ApplyResponse;
use tally_kvstore::proto::KeyValue;

use super::events::{Answer, Expect, OpId, Request};

/// Few keys, so that writes, reads and compare-and-sets meet.
const KEYS: [&[u8]; 6] = [b"a", b"b", b"c", b"d", b"e", b"f"];
/// Lease TTLs granted, in seconds (the store raises anything below 2).
const LEASE_TTL_SECS_MIN: u64 = 2;
const LEASE_TTL_SECS_MAX: u64 = 5;
const SESSIONS_MAX: usize = 6;
/// How long history is kept behind the newest acknowledged revision.
const HISTORY_REVISIONS: i64 = 40;

/// A request on its way, as its client remembers it.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub(crate) request: Request,
    pub(crate) node: NodeId,
    pub(crate) sent_ms: u64,
    /// For reads: the newest revision acknowledged to any client before it was sent.
    pub(crate) floor_revision: i64,
}

/// A client holding a lease and keeping it alive.
#[derive(Debug, Clone)]
struct Session {
    lease: i64,
    interval_ms: u64,
    next_keep_alive_ms: u64,
    /// Some holders stop keeping their lease alive, so that leases also expire.
    stop_at_ms: Option<u64>,
}

#[derive(Debug)]
pub(crate) struct Clients {
    rng: SimRng,
    next_op: OpId,
    pending: BTreeMap<OpId, Pending>,
    sessions: Vec<Session>,
    /// The latest version of each key a client saw, for compare-and-set.
    known: BTreeMap<Bytes, KeyValue>,
    succeeded: BTreeSet<OpId>,
    active: bool,
}

impl Clients {
    pub(crate) fn new(seed: u64) -> Clients {
        Clients {
            rng: SimRng::new(seed ^ 0xC11E),
            next_op: 0,
            pending: BTreeMap::new(),
            sessions: Vec::new(),
            known: BTreeMap::new(),
            succeeded: BTreeSet::new(),
            active: true,
        }
    }

    /// Stops every client: no new requests, no more keep-alives.
    pub(crate) fn stop(&mut self) {
        self.active = false;
    }

    /// This step's requests: (member, op, request).
    pub(crate) fn requests(
        &mut self,
        true_ms: u64,
        members: &[NodeId],
        floor_revision: i64,
    ) -> Vec<(NodeId, OpId, Request)> {
        if !self.active {
            return Vec::new();
        }
        let mut requests = Vec::new();
        for index in 0..self.sessions.len() {
            let session = &mut self.sessions[index];
            let stopped = session.stop_at_ms.is_some_and(|at| true_ms >= at);
            if true_ms < session.next_keep_alive_ms || stopped {
                continue;
            }
            session.next_keep_alive_ms = true_ms + session.interval_ms;
            let lease = session.lease;
            requests.push(Request::KeepAlive { lease });
        }
        for _ in 0..self.rng.below(3) {
            if let Some(request) = self.random_request(floor_revision) {
                requests.push(request);
            }
        }
        requests
            .into_iter()
            .map(|request| {
                let node = members[self.rng.below(members.len() as u64) as usize];
                let op = self.track(node, request.clone(), true_ms, floor_revision);
                (node, op, request)
            })
            .collect()
    }

    /// Remembers a request sent to `node`; returns its op.
    pub(crate) fn track(
        &mut self,
        node: NodeId,
        request: Request,
        true_ms: u64,
        floor_revision: i64,
    ) -> OpId {
        self.next_op += 1;
        let pending = Pending {
            request,
            node,
            sent_ms: true_ms,
            floor_revision,
        };
        self.pending.insert(self.next_op, pending);
        self.next_op
    }

    /// Whether op `op` was answered with success.
    pub(crate) fn succeeded(&self, op: OpId) -> bool {
        self.succeeded.contains(&op)
    }

    fn random_request(&mut self, floor_revision: i64) -> Option<Request> {
        let key = Bytes::from_static(KEYS[self.rng.below(KEYS.len() as u64) as usize]);
        let value = Bytes::from(format!("v{}", self.next_op + 1));
        Some(match self.rng.below(100) {
            0..=29 => {
                let lease = match self.sessions.len() {
                    0 => 0,
                    n if self.rng.chance(300) => {
                        self.sessions[self.rng.below(n as u64) as usize].lease
                    }
                    _ => 0,
                };
                Request::Put { key, value, lease }
            }
            30..=37 => Request::Delete { key },
            38..=49 => {
                let expect = match self.known.get(&key) {
                    Some(kv) if self.rng.chance(500) => Expect::Value(kv.value.clone()),
                    Some(kv) => Expect::ModRevision(kv.mod_revision),
                    None => Expect::ModRevision(0),
                };
                Request::CompareAndSet { key, expect, value }
            }
            50..=67 => Request::Range {
                key,
                linearizable: true,
            },
            68..=79 => Request::Range {
                key,
                linearizable: false,
            },
            80..=84 if self.sessions.len() < SESSIONS_MAX => {
                let span = LEASE_TTL_SECS_MAX - LEASE_TTL_SECS_MIN + 1;
                let ttl_secs = (LEASE_TTL_SECS_MIN + self.rng.below(span)) as i64;
                Request::LeaseGrant { ttl_secs }
            }
            85 | 86 if !self.sessions.is_empty() => {
                let index = self.rng.below(self.sessions.len() as u64) as usize;
                let session = self.sessions.swap_remove(index);
                Request::LeaseRevoke {
                    lease: session.lease,
                }
            }
            87 if floor_revision > HISTORY_REVISIONS => Request::Compact {
                revision: floor_revision - HISTORY_REVISIONS,
            },
            _ => return None,
        })
    }

    /// The request `op` was for, once answered.
    pub(crate) fn take(&mut self, op: OpId) -> Option<Pending> {
        self.pending.remove(&op)
    }

    /// What the client learns from an answer.
    pub(crate) fn on_answer(&mut self, op: OpId, pending: &Pending, answer: &Answer, true_ms: u64) {
        if matches!(answer, Answer::Applied(Ok(_))) {
            self.succeeded.insert(op);
        }
        let observe = |known: &mut BTreeMap<Bytes, KeyValue>, key: &Bytes, kv: Option<KeyValue>| {
            match kv {
                Some(kv) => known.insert(key.clone(), kv),
                None => known.remove(key),
            };
        };
        match (&pending.request, answer) {
            (Request::Put { key, value, .. }, Answer::Applied(Ok(ApplyResponse::Put(r)))) => {
                let mod_revision = r.header.as_ref().map_or(0, |h| h.revision);
                let kv = KeyValue {
                    key: key.clone(),
                    value: value.clone(),
                    mod_revision,
                    ..KeyValue::default()
                };
                observe(&mut self.known, key, Some(kv));
            }
            (Request::Range { key, .. }, Answer::Range(Ok(r))) => {
                observe(&mut self.known, key, r.kvs.first().cloned());
            }
            (
                Request::LeaseGrant { ttl_secs },
                Answer::Applied(Ok(ApplyResponse::LeaseGrant(r))),
            ) => {
                // Keep-alives every quarter TTL of true time: within a third of the TTL on
                // any member's clock, drift included.
                let ttl_ms = u64::try_from(*ttl_secs)
                    .unwrap_or(0)
                    .max(LEASE_TTL_SECS_MIN)
                    * 1000;
                let stop_at_ms = self
                    .rng
                    .chance(250)
                    .then(|| true_ms + self.rng.below(20_000));
                self.sessions.push(Session {
                    lease: r.id,
                    interval_ms: ttl_ms / 4,
                    next_keep_alive_ms: true_ms + ttl_ms / 4,
                    stop_at_ms,
                });
            }
            (Request::KeepAlive { lease }, Answer::KeepAlive { ttl_secs: 0, .. }) => {
                // As etcd's clients: a keep-alive answered with TTL 0 means the lease is gone.
                self.sessions.retain(|s| s.lease != *lease);
            }
            _ => {}
        }
    }
}
