//! Applying committed entries: the kvstore, the member table, and the clients waiting on them.

use std::time::Instant;

use mio::Registry;
use tally_core::{ConfChangeKind, Entry, EntryKind};
use tally_kvstore::proto::Member;

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
    pub(super) fn apply_entries(&mut self, entries: Vec<Entry>) {
        let started = Instant::now();
        // A replicated keep-alive restarts the lease's clock at the primary's apply time.
        self.writes.kv.set_now_ms(self.clock.now_ms());
        for entry in entries {
            match entry.kind() {
                EntryKind::ConfChange => self.apply_conf_change(&entry),
                _ => self.apply_normal(&entry),
            }
        }
        self.writes.metrics.observe_apply(started.elapsed());
    }

    fn apply_normal(&mut self, entry: &Entry) {
        match payload::decode(entry.data()) {
            Payload::Noop | Payload::Unknown => {}
            Payload::Attributes(member) => {
                self.members.apply_attributes(&member);
                if member.id != self.writes.identity.member_id {
                    if let Some(addr) = member.peer_urls.first() {
                        add_peer(self.peers, self.registry, member.id, addr);
                    }
                }
                self.answer_conf_waiters(member.id);
            }
            Payload::Kv(request) => {
                let outcome = self.writes.kv.apply(entry.index(), request);
                self.writes.metrics.on_proposal_applied();
                self.auth
                    .on_applied(outcome.result(), self.writes.kv.auth());
                let Some(outcome) = self.writes.on_applied(outcome) else {
                    return;
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
            }
        }
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
