//! Applying committed entries: the kvstore, the member table, and the clients waiting on them.

use std::time::Instant;

use mio::Registry;
use tally_core::{ConfChangeKind, Entry, EntryKind};
use tally_kvstore::Step;
use tally_kvstore::proto::Member;

use super::apply_queue::ApplyQueue;
use super::auth::{Auth, AuthService};
use super::conf_waiters::ConfWaiters;
use super::coordination::{Coordination, CoordinationService};
use super::members::{Members, log_fault_tolerance};
use super::payload::{self, Payload};
use super::reads::Reads;
use super::request_ids::Clock;
use super::rpc::{ConfAnswers, Proposer};
use super::standing::Standing;
use super::transports::add_peer;
use crate::peer::PeerTransport;

/// What applying committed entries touches: the store and the write path's waiters
/// (`writes`), the member table and the peer links it names, and the calls waiting for
/// membership changes.
pub(super) struct Applier<'a> {
    pub(super) writes: Proposer<'a>,
    pub(super) members: &'a mut Members,
    pub(super) conf_waiters: &'a mut ConfWaiters,
    pub(super) peers: &'a mut PeerTransport,
    pub(super) registry: &'a Registry,
    pub(super) standing: &'a mut Standing,
    pub(super) clock: Clock,
    /// Lock and election calls, whose steps continue at their apply.
    pub(super) coordination: &'a mut Coordination,
    pub(super) reads: &'a mut Reads,
    /// Tokens (an `Authenticate` gives one to every member) and `Authenticate` calls.
    pub(super) auth: &'a mut Auth,
}

impl Applier<'_> {
    /// Applies queued entries, in order, until the queue is empty or the turn's keys ran out
    /// (see `apply_queue`). Returns whether an entry was applied completely.
    pub(super) fn apply_queued(&mut self, queue: &mut ApplyQueue) -> bool {
        let started = Instant::now();
        let mut applied_any = false;
        let mut taken_any = false;
        while let Some(entry) = queue.take_next() {
            if !taken_any {
                taken_any = true;
                // A replicated keep-alive restarts the lease's clock at the primary's apply
                // time.
                self.writes.kv.set_now_ms(self.clock.now_ms());
            }
            let done = match entry.kind() {
                EntryKind::ConfChange => {
                    *queue.keys_left_mut() -= 1;
                    self.apply_conf_change(&entry);
                    true
                }
                _ => self.apply_normal(&entry, queue.keys_left_mut()),
            };
            if !done {
                queue.put_back(entry);
                break;
            }
            queue.applied(&entry);
            applied_any = true;
        }
        if taken_any {
            self.writes.metrics.observe_apply(started.elapsed());
        }
        applied_any
    }

    /// Applies `entry`, or goes on with it when the store holds it applied in part, visiting
    /// at most `*keys_left` keys (at least one). Returns whether it is applied completely.
    fn apply_normal(&mut self, entry: &Entry, keys_left: &mut usize) -> bool {
        let continued = self.writes.kv.pending_apply_index() == Some(entry.index());
        let step = if continued {
            self.writes.kv.apply_continue(keys_left)
        } else {
            match payload::decode(entry.data()) {
                Payload::Noop | Payload::Unknown => {
                    *keys_left -= 1;
                    return true;
                }
                Payload::Attributes(member) => {
                    *keys_left -= 1;
                    self.apply_attributes(member);
                    return true;
                }
                Payload::Kv(request) => {
                    self.writes
                        .kv
                        .apply_begin(entry.index(), request, keys_left)
                }
            }
        };
        let outcome = match step {
            Step::Done(outcome) => outcome,
            Step::Pending => {
                if !continued {
                    self.writes.metrics.on_apply_split();
                }
                return false;
            }
        };
        self.writes.metrics.on_proposal_applied();
        self.auth
            .on_applied(outcome.result(), self.writes.kv.auth());
        let Some(outcome) = self.writes.on_applied(outcome) else {
            return true;
        };
        let unclaimed = AuthService {
            writes: self.writes.reborrow(),
            auth: &mut *self.auth,
        }
        .on_applied(outcome);
        if let Some(outcome) = unclaimed {
            CoordinationService {
                writes: self.writes.reborrow(),
                reads: &mut *self.reads,
                coordination: &mut *self.coordination,
            }
            .on_applied(outcome);
        }
        true
    }

    fn apply_attributes(&mut self, member: Member) {
        self.members.apply_attributes(&member);
        if member.id != self.writes.identity.member_id {
            if let Some(addr) = member.peer_urls.first() {
                add_peer(self.peers, self.registry, member.id, addr);
            }
        }
        self.answer_conf_waiters(member.id);
    }

    fn answer_conf_waiters(&mut self, node: u64) {
        ConfAnswers {
            identity: self.writes.identity,
            node: self.writes.node,
            kv: self.writes.kv,
            members: self.members,
            calls: self.writes.calls,
            conf_waiters: self.conf_waiters,
        }
        .answer_conf_waiters(node);
    }

    fn apply_conf_change(&mut self, entry: &Entry) {
        let Ok(change) = tally_core::codec::decode_conf_change(entry.data()) else {
            return;
        };
        let id = change.node();
        let own_id = self.writes.identity.member_id;
        let context: Option<Member> = if change.context().is_empty() {
            None
        } else {
            prost::Message::decode(&change.context()[..]).ok()
        };
        match change.kind() {
            ConfChangeKind::AddVoter | ConfChangeKind::AddLearner => {
                let is_learner = change.kind() == ConfChangeKind::AddLearner;
                match (context, self.members.get(id).is_some()) {
                    (Some(member), _) => self.members.upsert(Member {
                        id,
                        is_learner,
                        ..member
                    }),
                    (None, true) => self.members.set_learner(id, is_learner),
                    (None, false) => {}
                }
                if let Some(addr) = self
                    .members
                    .get(id)
                    .and_then(|m| m.peer_urls.first().cloned())
                {
                    if id != own_id {
                        add_peer(self.peers, self.registry, id, &addr);
                    }
                }
                eprintln!(
                    "tallyd: member {id:x} added as {}",
                    if is_learner { "learner" } else { "voter" }
                );
            }
            ConfChangeKind::RemoveNode => {
                self.members.remove(id);
                let _ = self.peers.remove_peer(self.registry, id, Instant::now());
                eprintln!("tallyd: member {id:x} removed");
                if id == own_id {
                    // As etcd: stop after a few ticks, so that the removal's commit still
                    // reaches the others.
                    eprintln!("tallyd: this member was removed from the cluster; stopping");
                    self.standing.on_removed(Instant::now());
                }
            }
            _ => {}
        }
        self.answer_conf_waiters(id);
        log_fault_tolerance(self.writes.node.status().conf().voters().len());
    }
}
