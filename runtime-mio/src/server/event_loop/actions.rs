//! The core's actions, the WAL's and the snapshot worker's completions, ticks, and the work
//! between applies.

use std::time::Instant;

use bytes::Bytes;
use tally_core::{Action, NO_NODE};

use super::Server;
use super::start::PROGRESS_NOTIFY_INTERVAL;
use crate::server::error::ServerError;
use crate::server::persistence::PersistEvent;
use crate::server::snapshots::SnapshotDone;
use crate::server::transports::add_peer;
use crate::server::{leader_query, storage};

/// Keys compacted per loop turn, so compaction never stalls applies.
const COMPACTION_KEYS_PER_TURN: usize = 1000;
/// History records replayed per loop turn to unsynced watchers.
const WATCH_SYNC_RECORDS_PER_TURN: usize = 1000;

fn action_name(action: &Action) -> &'static str {
    match action {
        Action::Send(_) => "send",
        Action::Persist(_) => "persist",
        Action::ApplySnapshot(_) => "snapshot install",
        Action::Apply(_) => "apply",
        Action::ReadReady { .. } => "read confirmation",
        Action::RequestSnapshot { .. } => "snapshot creation",
        Action::LeaderChanged { .. } => "leader change",
        _ => "core action",
    }
}

impl Server {
    /// Carries out every action the core has, and applies committed entries as far as the
    /// turn's key budget goes (see `apply_queue`); again while applies gave the core more to do.
    pub(super) fn drain_actions(&mut self) -> Result<(), ServerError> {
        loop {
            self.drain_core()?;
            if !self.apply_queued() {
                return Ok(());
            }
        }
    }

    /// Applies queued entries while the turn has keys left; whether any was applied completely.
    fn apply_queued(&mut self) -> bool {
        let (mut applier, queue) = self.applier();
        applier.apply_queued(queue)
    }

    /// Carries out the core's actions until it has none, or until the apply queue is full:
    /// the rest wait in the core for a later turn (the loop turns again at once while entries
    /// wait to be applied).
    fn drain_core(&mut self) -> Result<(), ServerError> {
        while !self.applying.is_full() {
            let Some(action) = self.node.poll_action() else {
                break;
            };
            let started = Instant::now();
            let kind = action_name(&action);
            match action {
                Action::Send(message) if message.snapshot().is_some() => {
                    self.snapshots.send(message, &mut self.node);
                }
                Action::Send(message) => {
                    let frame = Bytes::from(tally_core::codec::encode_to_vec(&message));
                    if !self.peers.send(message.to(), frame) {
                        self.metrics.on_peer_frame_dropped();
                    }
                }
                Action::Persist(persist) => self.submit_persist(persist)?,
                Action::ApplySnapshot(snapshot) => {
                    let members =
                        self.snapshots
                            .install(&snapshot, &mut self.node, &mut self.kv)?;
                    for member in members.list() {
                        if member.id != self.identity.member_id {
                            if let Some(addr) = member.peer_urls.first() {
                                add_peer(&mut self.peers, self.poll.registry(), member.id, addr);
                            }
                        }
                    }
                    self.members = members;
                    // The installed state supersedes the entries waiting, and the one the
                    // store held applied in part (the restore dropped it).
                    self.applying.supersede(snapshot.meta().index());
                    // The replaced store, and the restore's own buffers, are free heap now.
                    self.heap_trim.request();
                }
                Action::Apply(entries) => {
                    // Sends come before applies in a drain: flushing them first gets the
                    // followers their appends and the new commit index before this turn's
                    // applies, so they apply alongside the leader.
                    self.peers.flush(self.poll.registry(), Instant::now());
                    self.applying.push(entries);
                    self.apply_queued();
                }
                Action::ReadReady { request, index } => {
                    self.reads.confirmed(request, index);
                }
                // Taken in `after_apply` once the entries up to `index` are applied completely.
                Action::RequestSnapshot { index } => self.snapshots.want(index),
                Action::LeaderChanged { leader, term } => self.on_leader_changed(leader, term),
                _ => {}
            }
            let took = started.elapsed();
            if took >= self.tick_interval {
                eprintln!(
                    "tallyd: warning: {kind} took {} ms on the loop thread",
                    took.as_millis()
                );
            }
        }
        Ok(())
    }

    fn submit_persist(&mut self, persist: tally_core::Persist) -> Result<(), ServerError> {
        let (index, term) = (persist.last_index(), persist.last_term());
        let logged: usize = persist.entries().iter().map(|e| e.data().len()).sum();
        self.snapshots.on_logged(logged as u64);
        if persist.snapshot().is_some_and(|s| s.meta().index() > 0) {
            return match self.snapshots.save_installed(persist) {
                Some(done) => self.on_snapshot_done(done),
                None => Ok(()),
            };
        }
        let batch = storage::to_batch(persist, self.snapshots.store())?;
        self.persistence.submit(batch, index, term)
    }

    pub(super) fn drain_wal(&mut self) -> Result<(), ServerError> {
        while let Some(event) = self.persistence.poll_event()? {
            match event {
                PersistEvent::Persisted { index, term, took } => {
                    self.metrics.observe_wal_fsync(took);
                    let acknowledged = self.node.on_persisted(index, term);
                    assert!(
                        acknowledged,
                        "the core had no write outstanding ending at ({index}, {term})"
                    );
                }
                PersistEvent::MarkerDurable { index } => {
                    if let Err(e) = self.snapshots.store().retain(index) {
                        eprintln!("tallyd: could not remove old snapshots: {e}");
                    }
                }
                PersistEvent::OutOfSpace(error) => self.writes().on_wal_out_of_space(&error),
                PersistEvent::SpaceRecovered => self.writes().on_wal_space_recovered(),
            }
        }
        Ok(())
    }

    pub(super) fn drain_snapshot_worker(&mut self) -> Result<(), ServerError> {
        while let Some(done) = self.snapshots.poll_done() {
            self.on_snapshot_done(done)?;
        }
        Ok(())
    }

    fn on_snapshot_done(&mut self, done: SnapshotDone) -> Result<(), ServerError> {
        match done {
            SnapshotDone::InstalledSaved { batch, index, term } => {
                self.persistence.submit(batch, index, term)?;
            }
            SnapshotDone::InstallFailed(e) => return Err(e.into()),
            // A snapshot installed from the leader meanwhile supersedes this one.
            SnapshotDone::Written { index, bytes, .. }
                if index < self.node.status().snapshot_index() =>
            {
                self.snapshots.on_superseded(bytes);
            }
            SnapshotDone::Written { index, term, bytes } => {
                eprintln!("tallyd: saved snapshot at index {index}");
                self.snapshots.on_written(bytes);
                self.persistence.record_snapshot(index, term);
            }
            SnapshotDone::Failed {
                meta,
                error,
                out_of_space,
            } => {
                eprintln!("tallyd: snapshot failed: {error}; retrying in a few seconds");
                if out_of_space {
                    self.writes().raise_nospace_for_disk(&error);
                }
                self.snapshots.on_failed(meta);
            }
        }
        Ok(())
    }

    fn on_leader_changed(&mut self, leader: u64, term: u64) {
        self.leader = leader;
        if leader != self.identity.member_id && self.kv.is_primary() {
            // However it stepped down (to no leader first, or straight to another), this
            // member's clock no longer runs leases: a keep-alive it answered alone would never
            // reach the real leader, which would let the lease expire.
            self.kv.demote();
        }
        let now = Instant::now();
        self.standing.on_leader(leader, now);
        self.apply_standing_dialing(now);
        self.metrics.on_leader(leader, self.identity.member_id);
        if leader == NO_NODE {
            eprintln!(
                "tallyd: member {:x} lost its leader at term {term}",
                self.identity.member_id
            );
            return;
        }
        eprintln!(
            "tallyd: member {:x} elected leader {leader:x} at term {term}",
            self.identity.member_id
        );
        self.conf_answers().answer_move_leader(leader);
        if leader == self.identity.member_id {
            // A new leader extends every lease by an election timeout, as etcd does.
            self.kv
                .promote(self.clock.now_ms(), self.flags.election_timeout_ms());
        }
        if !self.attributes_published {
            self.publish_attributes();
        }
    }

    fn publish_attributes(&mut self) {
        let Some(mut me) = self.members.get(self.identity.member_id).cloned() else {
            return;
        };
        me.name = self.flags.name().to_string();
        me.client_urls = self
            .flags
            .advertise_client_urls()
            .iter()
            .map(ToString::to_string)
            .collect();
        if self
            .node
            .propose(crate::server::payload::encode_attributes(&me))
            .is_ok()
        {
            self.attributes_published = true;
        }
    }

    pub(super) fn on_tick(&mut self, now: Instant) {
        self.kv.set_now_ms(self.clock.now_ms());
        self.calls.sink_mut().tick(self.poll.registry(), now);
        if let Some(http) = self.metrics_http.as_mut() {
            http.tick(self.poll.registry(), now);
        }
        if self.leader != NO_NODE && !self.attributes_published {
            self.publish_attributes();
        }
        self.writes().expire_waiters(now);
        self.kv_service().expire_reads(now);
        self.conf_answers().expire_conf_waiters(now);
        self.coordination_service().expire(now);
        self.auth.on_tick(now);
        leader_query::expire_leader_queries(&mut self.leader_queries, &mut self.calls, now);
        self.standing.on_tick(now);
        self.apply_standing_dialing(now);
        let leads = self.leader == self.identity.member_id;
        if leads {
            let applied = self.applying.applied_index();
            self.lease_expiry
                .revoke_expired(&mut writes!(self), self.clock, now, applied);
        }
        self.auto_compactor
            .compact_if_due(&mut writes!(self), leads, now);
        if now >= self.next_progress_notify {
            self.next_progress_notify = now + PROGRESS_NOTIFY_INTERVAL;
            self.kv.progress_notify_tick();
        }
    }

    /// Work between applies: snapshots, bounded compaction and watcher catch-up, watch
    /// delivery, and reads whose index is now applied. With an entry applied in part, only
    /// what sees completed applies alone: a snapshot copy's next slice, watch delivery, and
    /// reads (the store shows none of that entry yet).
    pub(super) fn after_apply(&mut self) {
        let applied = self.applying.applied_index();
        let settled = self.kv.pending_apply_index().is_none();
        // A backlog one turn cannot clear (a restart's replay) is applied before a snapshot is
        // taken: its copy would compete with the replay for the loop, for a state soon stale.
        let snapshot_at = (settled && !self.applying.is_backlogged()).then_some(applied);
        self.snapshots
            .after_apply(&mut self.node, &mut self.kv, &self.members, snapshot_at);
        if self.applying.poll_backlog_released() {
            // A long backlog (a restart's replay) is applied: its buffers are free heap now.
            self.heap_trim.request();
        }
        if self.kv.compaction_step_ready() {
            if !self.kv.compact_step(COMPACTION_KEYS_PER_TURN) {
                // The compaction is done: what it removed is free heap now.
                self.heap_trim.request();
            }
            // Also after the last step: that is when the waiting `physical` calls are done.
            self.writes().release_compactions();
        }
        if settled && self.kv.has_unsynced_watchers() {
            self.kv.sync_watchers_step(WATCH_SYNC_RECORDS_PER_TURN);
        }
        self.coordination_service().after_apply();
        self.watch_service().deliver_watch_events();
        self.kv_service().serve_ready_reads(applied);
        self.kv_service().advance_sliced_ranges();
        self.release_ended_calls();
        self.calls.flush_all();
    }
}
