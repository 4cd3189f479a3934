//! Applying committed entries: the kvstore, the member table, and the clients waiting on them.

use std::time::Instant;

use tally_core::{ConfChangeKind, Entry, EntryKind, Snapshot};
use tally_kvstore::proto::Member;

use super::event_loop::Server;
use super::payload::{self, Payload};

use super::startup::ServerError;

impl Server {
    pub(super) fn apply_entries(&mut self, entries: Vec<Entry>) {
        let started = Instant::now();
        // A replicated keep-alive restarts the lease's clock at the primary's apply time.
        self.kv.set_now_ms(self.now_ms());
        for entry in entries {
            match entry.kind() {
                EntryKind::ConfChange => self.apply_conf_change(&entry),
                _ => self.apply_normal(&entry),
            }
        }
        self.metrics.apply.observe(started.elapsed());
    }

    fn apply_normal(&mut self, entry: &Entry) {
        match payload::decode(entry.data()) {
            Payload::Noop | Payload::Unknown => {}
            Payload::Attributes(member) => {
                self.members.apply_attributes(&member);
                if member.id != self.identity.member_id {
                    if let Some(addr) = member.peer_urls.first() {
                        super::transports::add_peer(
                            &mut self.peers,
                            self.poll.registry(),
                            member.id,
                            addr,
                        );
                    }
                }
                self.answer_conf_waiters(member.id);
            }
            Payload::Kv(request) => {
                let outcome = self.kv.apply(entry.index(), request);
                self.metrics.proposals_applied += 1;
                self.metrics.proposals_committed += 1;
                if let Some(waiter) = self.waiters.remove(outcome.request_id()) {
                    self.metrics.proposals_pending = self.waiters.len() as u64;
                    self.answer_waiter(waiter, outcome);
                }
            }
        }
    }

    fn apply_conf_change(&mut self, entry: &Entry) {
        let Ok(change) = tally_core::codec::decode_conf_change(entry.data()) else {
            return;
        };
        let id = change.node();
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
                    if id != self.identity.member_id {
                        super::transports::add_peer(
                            &mut self.peers,
                            self.poll.registry(),
                            id,
                            &addr,
                        );
                    }
                }
                eprintln!(
                    "tallyd: member {id:x} added as {}",
                    if is_learner { "learner" } else { "voter" }
                );
            }
            ConfChangeKind::RemoveNode => {
                self.members.remove(id);
                let _ = self
                    .peers
                    .remove_peer(self.poll.registry(), id, Instant::now());
                eprintln!("tallyd: member {id:x} removed");
                if id == self.identity.member_id {
                    // As etcd: stop after a few ticks, so that the removal's commit still
                    // reaches the others.
                    eprintln!("tallyd: this member was removed from the cluster; stopping");
                    self.standing.on_removed(Instant::now());
                }
            }
            _ => {}
        }
        self.answer_conf_waiters(id);
        log_fault_tolerance(self.node.status().conf().voters().len());
    }

    pub(super) fn install_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), ServerError> {
        let (members, bytes) = if snapshot.data().is_empty() {
            // Received into its file (`snapshots::incoming`), which is durable by now.
            let meta = snapshot.meta();
            let reader = self
                .snapshots
                .open_reader(meta.index(), meta.term())
                .map_err(|e| ServerError::DataDir(format!("received snapshot: {e}")))?;
            let bytes = reader.data_len();
            (
                super::startup::restore_from_file(reader, &mut self.kv)?,
                bytes,
            )
        } else {
            let data = &snapshot.data()[..];
            let members = super::startup::restore_store(data, &mut self.kv, "received snapshot")?;
            (members, data.len() as u64)
        };
        for member in members.list() {
            if member.id != self.identity.member_id {
                if let Some(addr) = member.peer_urls.first() {
                    super::transports::add_peer(
                        &mut self.peers,
                        self.poll.registry(),
                        member.id,
                        addr,
                    );
                }
            }
        }
        self.members = members;
        // Its file is durable (ApplySnapshot follows the Persist that wrote it).
        let released = self.node.release_snapshot_data(snapshot.meta().index());
        assert!(released, "the snapshot just installed is the core's latest");
        self.snapshot_pacing.on_snapshot_started();
        self.snapshot_pacing.on_snapshot_bytes(bytes);
        eprintln!(
            "tallyd: installed snapshot at index {}",
            snapshot.meta().index()
        );
        Ok(())
    }

    /// Expired client requests get etcd's timeout error.
    pub(super) fn expire_waiters(&mut self, now: Instant) {
        for waiter in self.waiters.take_expired(now) {
            self.metrics.proposals_failed += 1;
            self.fail_waiter(waiter, super::rpc::status_timeout());
        }
        self.metrics.proposals_pending = self.waiters.len() as u64;
        self.expire_reads(now);
        self.expire_conf_waiters(now);
        self.expire_leader_queries(now);
    }

    pub(super) fn revoke_expired_leases(&mut self, now: Instant) {
        let status = self.node.status();
        if status.applied() < status.commit() {
            // A committed keep-alive not applied yet may renew a lease that looks expired: decide
            // once the store has caught up with the log.
            return;
        }
        self.pending_revokes
            .retain(|_, since| now.duration_since(*since) < super::event_loop::REQUEST_TIMEOUT);
        let expired = self
            .kv
            .expired_leases(self.now_ms(), super::event_loop::LEASE_REVOKES_PER_TICK_MAX);
        for id in expired {
            if self.pending_revokes.contains_key(&id) {
                continue;
            }
            self.pending_revokes.insert(id, now);
            let revoke = tally_kvstore::proto::internal_request::Request::LeaseRevoke(
                tally_kvstore::proto::LeaseRevokeRequest { id },
            );
            if self.propose_request(revoke).is_err() {
                self.pending_revokes.remove(&id);
            }
        }
    }

    pub(super) fn release_compactions(&mut self) {
        let kv = &self.kv;
        let done = self
            .waiters
            .take_compactions_done(|revision| kv.compaction_done(revision));
        for (call, response) in done {
            self.reply_encoded(call, response);
        }
    }
}

/// How many voting members may fail: logged at start and on every membership change, and
/// exported on `/metrics` (`tally_cluster_fault_tolerance`), never in Status's errors, which
/// etcd keeps for real errors.
pub(super) fn log_fault_tolerance(voters: usize) {
    if voters == 0 {
        return;
    }
    eprintln!(
        "tallyd: fault tolerance: {} of {voters} voting members may fail",
        fault_tolerance(voters)
    );
    if voters % 2 == 0 {
        eprintln!(
            "tallyd: warning: the cluster has an even number of voting members ({voters}): one more member adds no fault tolerance"
        );
    }
}

/// Voting members that may fail with a quorum left.
pub(super) fn fault_tolerance(voters: usize) -> usize {
    voters.saturating_sub(1) / 2
}
