//! Calls a follower cannot answer alone, put to the leader over the peer link.
//!
//! - `LeaseTimeToLive`: a lease's clock runs on the leader only (keep-alives sent to it are not
//!   replicated), so a follower that answered from its own store would report the granted or
//!   last checkpointed TTL of a lease that may be about to expire.
//! - `MemberPromote`: only the leader knows how much of its log a learner holds (etcd's
//!   readiness rule), and a follower's forwarded conf change that the leader refuses is dropped
//!   without a word. So the leader checks and proposes the promotion, and says whether it did;
//!   the follower answers its client once the change is applied, as for a local call.
//!
//! etcd forwards both calls to the leader; so do we, as tallyd-level frames on the one peer
//! connection, beside Raft's messages and snapshot chunks:
//!
//! - lease query: `FrameKind::LeaseQuery`'s tag, query id (u64 LE), the encoded
//!   `LeaseTimeToLiveRequest`;
//! - promote query: `FrameKind::PromoteQuery`'s tag, query id (u64 LE), the learner's member
//!   id (u64 LE);
//! - answer: `FrameKind::LeaderAnswer`'s tag, query id (u64 LE), an `AnswerStatus` byte, then for `Ok` the
//!   leader's encoded `LeaseTimeToLiveResponse` (nothing for a promotion), and for `Refused`
//!   the gRPC code (one byte) and UTF-8 message the leader would have given its own client.
//!
//! A query the leader cannot answer (it lost the lead, or the answer is over a peer frame) gets a
//! status the follower turns into etcd's error; a lost frame, or a leader too old to know the
//! query, ends in the follower's request timeout.

mod frames;

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use tally_core::{ConfChange, ConfChangeKind, Node};
use tally_kvstore::KvStore;
use tally_kvstore::proto;

use super::calls::{CALLS_MAX, Calls, Method};
use super::conf_waiters::{ConfWaiter, ConfWaiters, wait_for_conf};
use super::identity::Identity;
use super::members::Members;
use super::request_ids::{Clock, RequestIds};
use super::rpc::reconfig::ReconfigCheck;
use super::rpc::respond::{Respond, respond_through_fields};
use super::rpc::status::{
    REQUEST_TIMEOUT, status, status_from_propose, status_no_leader, status_timeout,
};
use crate::client::{CallId, Code as GrpcCode, Status};
use crate::peer::PeerTransport;
use frames::{
    Answer, AnswerStatus, QueryKind, decode_answer, decode_promote_query, decode_query,
    dropped_if_bad, encode_answer, encode_promote_query, encode_query, encode_refusal,
};

/// A follower's call waiting for the leader's answer.
#[derive(Debug, Clone, Copy)]
struct LeaderQuery {
    call: CallId,
    kind: QueryKind,
    /// The member asked; an answer from anyone else is ignored.
    leader: u64,
    deadline: Instant,
}

/// Queries in flight, keyed by query id: at most one per open call, so at most
/// [`CALLS_MAX`].
#[derive(Debug, Default)]
pub(super) struct LeaderQueries {
    by_id: HashMap<u64, LeaderQuery>,
}

impl LeaderQueries {
    /// Sends `frame` (query `id`) to `leader` for `call`; the status to end the call with
    /// when it cannot be asked.
    fn ask(
        &mut self,
        peers: &mut PeerTransport,
        leader: u64,
        (id, frame): (u64, Bytes),
        call: CallId,
        kind: QueryKind,
    ) -> Result<(), Status> {
        if leader == tally_core::NO_NODE || self.by_id.len() >= CALLS_MAX {
            return Err(status_no_leader());
        }
        if !peers.send(leader, frame) {
            return Err(status_no_leader());
        }
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        self.by_id.insert(
            id,
            LeaderQuery {
                call,
                kind,
                leader,
                deadline,
            },
        );
        Ok(())
    }

    /// The calls whose queries went to `peer`, which no longer waits for them.
    fn take_to(&mut self, peer: u64) -> Vec<CallId> {
        self.take_where(|query| query.leader == peer)
    }

    /// The calls whose queries timed out.
    fn take_expired(&mut self, now: Instant) -> Vec<CallId> {
        self.take_where(|query| query.deadline <= now)
    }

    fn take_where(&mut self, mut taken: impl FnMut(&LeaderQuery) -> bool) -> Vec<CallId> {
        let mut calls = Vec::new();
        self.by_id.retain(|_, query| {
            if taken(query) {
                calls.push(query.call);
                false
            } else {
                true
            }
        });
        calls
    }
}

/// What putting calls to the leader, and answering them as the leader, needs.
pub(in crate::server) struct LeaderQueryService<'a> {
    pub(in crate::server) identity: &'a Identity,
    pub(in crate::server) node: &'a mut Node,
    pub(in crate::server) kv: &'a mut KvStore,
    pub(in crate::server) members: &'a Members,
    pub(in crate::server) calls: &'a mut Calls,
    pub(in crate::server) peers: &'a mut PeerTransport,
    pub(in crate::server) queries: &'a mut LeaderQueries,
    pub(in crate::server) conf_waiters: &'a mut ConfWaiters,
    pub(in crate::server) ids: &'a mut RequestIds,
    pub(in crate::server) clock: Clock,
    pub(in crate::server) leader: u64,
    /// `--strict-reconfig-check`.
    pub(in crate::server) strict_reconfig: bool,
}

respond_through_fields!(LeaderQueryService);

/// A follower's `MemberPromote` of `learner`, already checked against its own view of the
/// membership: the leader checks it again and proposes it.
pub(in crate::server) fn forward_promote(
    queries: &mut LeaderQueries,
    peers: &mut PeerTransport,
    (leader, id): (u64, u64),
    call: CallId,
    learner: u64,
) -> Result<(), Status> {
    let frame = encode_promote_query(id, learner);
    queries.ask(
        peers,
        leader,
        (id, frame),
        call,
        QueryKind::Promote { learner },
    )
}

impl LeaderQueryService<'_> {
    /// `LeaseTimeToLive`: local on the lease primary, else asked of the leader.
    pub(in crate::server) fn lease_time_to_live(
        &mut self,
        call: CallId,
        request: proto::LeaseTimeToLiveRequest,
    ) {
        if self.kv.is_primary() || self.leader == self.node.id() {
            let response = self.kv.lease_time_to_live(&request, self.clock.now_ms());
            return self.reply(call, response);
        }
        let id = self.ids.next();
        let frame = encode_query(id, &request);
        let kind = QueryKind::LeaseTimeToLive;
        if let Err(refused) = self
            .queries
            .ask(self.peers, self.leader, (id, frame), call, kind)
        {
            self.reply_error(call, refused);
        }
    }

    /// On the leader: answers a follower's lease query.
    pub(in crate::server) fn answer_lease_query(&mut self, from: u64, frame: &[u8]) {
        let Some((id, request)) = dropped_if_bad(from, decode_query(frame)) else {
            return;
        };
        if !self.kv.is_primary() {
            self.peers
                .send(from, encode_answer(id, AnswerStatus::NotLeader, None));
            return;
        }
        let response = self.kv.lease_time_to_live(&request, self.clock.now_ms());
        let response = self.encode(response);
        if !self
            .peers
            .send(from, encode_answer(id, AnswerStatus::Ok, Some(&response)))
        {
            self.peers
                .send(from, encode_answer(id, AnswerStatus::TooLarge, None));
        }
    }

    /// On the leader: checks and proposes a follower's promotion, and says how that went.
    pub(in crate::server) fn answer_promote_query(&mut self, from: u64, frame: &[u8]) {
        let Some((id, learner)) = dropped_if_bad(from, decode_promote_query(frame)) else {
            return;
        };
        if self.leader != self.node.id() {
            self.peers
                .send(from, encode_answer(id, AnswerStatus::NotLeader, None));
            return;
        }
        let check = ReconfigCheck::new(
            self.members,
            self.peers,
            self.identity.member_id,
            self.strict_reconfig,
        );
        let proposed = check.check_promote_member(learner).and_then(|()| {
            let change = ConfChange::new(ConfChangeKind::AddVoter, learner);
            self.node
                .propose_conf_change(&change)
                .map_err(status_from_propose)
        });
        let answer = match proposed {
            Ok(()) => encode_answer(id, AnswerStatus::Ok, None),
            Err(refused) => encode_refusal(id, &refused),
        };
        self.peers.send(from, answer);
    }

    /// On the follower: the leader's answer to one of its queries.
    pub(in crate::server) fn finish_leader_query(&mut self, from: u64, frame: &[u8]) {
        let Some((id, answer_status, body)) = dropped_if_bad(from, decode_answer(frame)) else {
            return;
        };
        let Some(query) = self.queries.by_id.get(&id).copied() else {
            return; // timed out already
        };
        if query.leader != from {
            eprintln!(
                "tallyd: peer {from:x} answered a query sent to {:x}; dropped",
                query.leader
            );
            return;
        }
        let Some(answer) =
            dropped_if_bad(from, Answer::from_parts(query.kind, answer_status, body))
        else {
            return;
        };
        self.queries.by_id.remove(&id);
        match (answer, query.kind) {
            (Answer::Failed(refused), _) => self.reply_error(query.call, refused),
            (Answer::Ok(body), QueryKind::LeaseTimeToLive) => {
                self.reply_encoded(query.call, Bytes::copy_from_slice(body))
            }
            // The leader answers before the entry can commit, and on the same connection as
            // the commit index, so the apply comes after this and finds the waiter.
            (Answer::Ok(_), QueryKind::Promote { learner }) => wait_for_conf(
                self.conf_waiters,
                self.calls,
                ConfWaiter {
                    call: query.call,
                    node: learner,
                    method: Method::MemberPromote,
                    deadline: query.deadline,
                },
            ),
        }
    }
}

/// `peer` does not know the query frames (it runs another release): every query put to it is
/// answered now, with etcd's "not supported" status, rather than at its timeout.
pub(super) fn fail_leader_queries_to(queries: &mut LeaderQueries, calls: &mut Calls, peer: u64) {
    for call in queries.take_to(peer) {
        calls.reply_error(
            call,
            status(
                GrpcCode::Unavailable,
                "etcdserver: the leader runs a release that cannot answer this call",
            ),
        );
    }
}

pub(super) fn expire_leader_queries(queries: &mut LeaderQueries, calls: &mut Calls, now: Instant) {
    for call in queries.take_expired(now) {
        calls.reply_error(call, status_timeout());
    }
}
