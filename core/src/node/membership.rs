//! Membership changes and log compaction.
//!
//! Configuration changes take effect **on apply**: when the core hands a `ConfChange` entry to
//! the application in an `Apply` action, the new membership is already in force. Only one
//! change may be pending (appended but not applied) at a time, so every change is a single
//! step between configurations whose majorities overlap.

use bytes::Bytes;

use super::Node;
use crate::error::{CompactError, ProposeError};
use crate::types::{
    ConfChange, ConfChangeKind, ConfState, Entry, NO_NODE, NodeId, Role, Snapshot, SnapshotMeta,
};

/// How much of the leader's log a learner must hold before it may become a voter (etcd's
/// `readyPercent`).
pub const LEARNER_READY_PERCENT: u64 = 90;

impl Node {
    /// Whether `change` is valid against the current membership (leader side).
    pub(super) fn check_conf_change(&self, change: &ConfChange) -> Result<(), ProposeError> {
        if self.pending_conf_index > self.log.applied() {
            return Err(ProposeError::ConfChangePending);
        }
        let conf = self.tracker.conf();
        let node = change.node();
        if change.kind() == ConfChangeKind::AddVoter
            && conf.is_learner(node)
            && !self.learner_caught_up(node)
        {
            return Err(ProposeError::LearnerNotReady);
        }
        let valid = node != NO_NODE
            && match change.kind() {
                ConfChangeKind::AddVoter => !conf.is_voter(node),
                ConfChangeKind::AddLearner => !conf.contains(node),
                ConfChangeKind::RemoveNode => {
                    conf.is_learner(node) || (conf.is_voter(node) && conf.voters().len() > 1)
                }
            };
        if valid {
            Ok(())
        } else {
            Err(ProposeError::InvalidConfChange)
        }
    }

    /// Whether learner `node` holds at least [`LEARNER_READY_PERCENT`] of the leader's log, as
    /// etcd requires before promoting one.
    fn learner_caught_up(&self, node: NodeId) -> bool {
        let last = self.log.last_index();
        self.tracker.get(node).is_some_and(|progress| {
            progress.matched.saturating_mul(100) >= last.saturating_mul(LEARNER_READY_PERCENT)
        })
    }

    /// Puts an applied `ConfChange` entry into effect. Invalid changes are ignored the same way
    /// on every member, so all stay identical.
    pub(super) fn apply_conf_change(&mut self, entry: &Entry) {
        let Ok(change) = crate::codec::decode_conf_change(entry.data()) else {
            return;
        };
        let mut conf = self.tracker.conf().clone();
        if !conf.apply(&change) || conf.voters().is_empty() {
            return;
        }
        let next = self.log.last_index() + 1;
        self.conf_history.push((entry.index(), conf.clone()));
        if self.role == Role::Leader {
            self.tracker.set_conf(conf, next);
            if !self.tracker.conf().is_voter(self.id) {
                // A removed (or demoted) leader steps down; the others elect a successor.
                self.become_follower(self.term, NO_NODE);
                return;
            }
            if self.transferee != NO_NODE && !self.tracker.conf().is_voter(self.transferee) {
                self.transferee = NO_NODE;
            }
            self.refresh_self_progress();
            self.maybe_commit();
            self.broadcast_pending = true;
        } else {
            self.tracker.set_conf(conf, next);
            self.tracker.clear();
        }
    }

    /// The membership in force after applying entry `index`.
    fn conf_at(&self, index: u64) -> ConfState {
        self.conf_history
            .iter()
            .rev()
            .find(|(at, _)| *at <= index)
            .map_or_else(
                || self.log.snapshot().meta().conf().clone(),
                |(_, conf)| conf.clone(),
            )
    }

    pub(super) fn compact_to(&mut self, index: u64, data: Bytes) -> Result<Snapshot, CompactError> {
        if index > self.log.applied() {
            return Err(CompactError::NotApplied);
        }
        if index <= self.log.snapshot().meta().index() {
            return Err(CompactError::AlreadyCompacted);
        }
        let term = self
            .log
            .term(index)
            .expect("applied entries above the snapshot are in memory");
        let conf = self.conf_at(index);
        let snapshot = Snapshot::new(SnapshotMeta::new(index, term, conf), data);
        let keep_after = index.saturating_sub(self.config.compaction_trailing_entries());
        self.log.compact(snapshot.clone(), keep_after);
        self.conf_history.retain(|(at, _)| *at > index);
        self.snapshot_requested = false;
        Ok(snapshot)
    }
}
