//! Log replication: proposals, the leader's flow-controlled appends, the follower's answers,
//! and the commit rule.

use alloc::vec::Vec;
use bytes::Bytes;

use super::Node;
use crate::error::ProposeError;
use crate::message::{Body, Message};
use crate::progress::ProgressState;
use crate::types::{Entry, EntryKind, NO_NODE, NodeId, Role, Snapshot};

impl Node {
    pub(super) fn propose_entry(
        &mut self,
        kind: EntryKind,
        data: Bytes,
    ) -> Result<(), ProposeError> {
        if data.len() as u64 > self.config.entry_bytes_max() {
            return Err(ProposeError::TooLarge);
        }
        match self.role {
            Role::Leader => {
                if self.transferee != NO_NODE {
                    return Err(ProposeError::TransferInProgress);
                }
                self.leader_append(kind, data)
            }
            _ if !self.tracker.conf().contains(self.id) && self.log.last_index() > 0 => {
                Err(ProposeError::Removed)
            }
            _ if self.leader == NO_NODE => Err(ProposeError::NoLeader),
            _ => {
                if self.forward.len() >= self.config.forward_entries_max() as usize {
                    return Err(ProposeError::Busy);
                }
                self.forward.push(Entry::new(0, 0, kind, data));
                Ok(())
            }
        }
    }

    fn leader_append(&mut self, kind: EntryKind, data: Bytes) -> Result<(), ProposeError> {
        if kind == EntryKind::ConfChange {
            if self.pending_conf_index > self.log.applied() {
                return Err(ProposeError::ConfChangePending);
            }
            self.pending_conf_index = self.log.last_index() + 1;
        }
        let entry = Entry::new(self.log.last_index() + 1, self.term, kind, data);
        let size = entry.size_bytes() as u64;
        if self.uncommitted_bytes > 0
            && self.uncommitted_bytes + size > self.config.uncommitted_bytes_max()
        {
            return Err(ProposeError::Busy);
        }
        self.uncommitted_bytes += size;
        self.log.append(core::iter::once(entry));
        self.broadcast_pending = true;
        Ok(())
    }

    /// Proposals forwarded by followers. A refused one is dropped: its proposer times out.
    pub(super) fn accept_forwarded(&mut self, entries: Vec<Entry>) {
        if self.transferee != NO_NODE {
            return;
        }
        for entry in entries {
            if entry.kind() == EntryKind::ConfChange {
                let valid = crate::codec::decode_conf_change(entry.data())
                    .ok()
                    .is_some_and(|change| self.check_conf_change(&change).is_ok());
                if !valid {
                    continue;
                }
            }
            if entry.data().len() as u64 <= self.config.entry_bytes_max() {
                let _refused = self.leader_append(entry.kind(), entry.data().clone());
            }
        }
    }

    /// Sends what `to` is missing: entries (up to `message_bytes_max`) or the snapshot. An
    /// empty append is sent only if `allow_empty` (to carry the commit index). Returns whether
    /// more entries remain to send and the follower is not paused.
    pub(super) fn send_append(&mut self, to: NodeId, allow_empty: bool) -> bool {
        let inflight_max = self.config.inflight_max();
        let Some(progress) = self.tracker.get(to) else {
            return false;
        };
        if progress.is_paused(inflight_max) {
            return false;
        }
        let next = progress.next;
        let prev_index = next - 1;
        let last_index = self.log.last_index();
        let prev_term = self.log.term(prev_index);
        let entries = self
            .log
            .slice(next, last_index + 1, self.config.message_bytes_max());
        let (Some(prev_term), Some(entries)) = (prev_term, entries) else {
            self.send_snapshot(to);
            return false;
        };
        if entries.is_empty() && !allow_empty {
            return false;
        }
        let sent_last = prev_index + entries.len() as u64;
        let count = entries.len();
        let commit = self.log.committed();
        self.send(
            to,
            Body::Append {
                prev_index,
                prev_term,
                commit,
                entries,
            },
        );
        let progress = self.tracker.get_mut(to).expect("progress exists");
        progress.sent_append(sent_last, count, inflight_max);
        progress.state == ProgressState::Replicate
            && sent_last < last_index
            && !progress.is_paused(inflight_max)
    }

    fn send_snapshot(&mut self, to: NodeId) {
        let snapshot = self.log.snapshot().clone();
        let index = snapshot.meta().index();
        if let Some(progress) = self.tracker.get_mut(to) {
            progress.become_snapshot(index);
        }
        self.send(to, Body::Snapshot { snapshot });
    }

    /// Sends every follower what it lacks, as few messages as flow control allows.
    pub(super) fn broadcast_append(&mut self) {
        let peers: Vec<NodeId> = self.tracker.ids().filter(|&id| id != self.id).collect();
        for peer in peers {
            while self.send_append(peer, true) {}
        }
    }

    pub(super) fn broadcast_heartbeat(&mut self) {
        let context = self.reads.heartbeat_context();
        let commit = self.log.committed();
        let peers: Vec<(NodeId, u64)> = self
            .tracker
            .ids()
            .filter(|&id| id != self.id)
            .map(|id| (id, self.tracker.get(id).map_or(0, |p| p.matched)))
            .collect();
        for (peer, matched) in peers {
            // A follower must never learn a commit index beyond what it is known to match.
            self.send(
                peer,
                Body::Heartbeat {
                    commit: commit.min(matched),
                    context,
                },
            );
        }
    }

    pub(super) fn handle_append_response(
        &mut self,
        from: NodeId,
        reject: bool,
        index: u64,
        hint_index: u64,
        hint_term: u64,
    ) {
        let Some(progress) = self.tracker.get_mut(from) else {
            return;
        };
        progress.recent_active = true;
        if reject {
            let next_probe = if hint_term > 0 {
                self.log.find_conflict_by_term(hint_index, hint_term).0
            } else {
                hint_index
            };
            let progress = self.tracker.get_mut(from).expect("progress exists");
            if progress.reject(index, next_probe.saturating_add(1)) {
                if progress.state == ProgressState::Replicate {
                    progress.become_probe();
                }
                self.send_append(from, true);
            }
            return;
        }
        // `validate` refused acknowledgements beyond this log, so `matched` stays within it.
        if !progress.acknowledge(index) {
            return;
        }
        match progress.state {
            ProgressState::Probe => progress.become_replicate(),
            ProgressState::Snapshot if progress.matched >= progress.pending_snapshot => {
                progress.become_probe();
                progress.become_replicate();
            }
            _ => {}
        }
        if self.maybe_commit() {
            self.broadcast_pending = true;
        } else {
            while self.send_append(from, false) {}
        }
        if self.transferee == from {
            self.send_timeout_now_if_caught_up(from);
        }
    }

    pub(super) fn handle_heartbeat_response(&mut self, from: NodeId, context: u64) {
        let last_index = self.log.last_index();
        let inflight_max = self.config.inflight_max();
        let Some(progress) = self.tracker.get_mut(from) else {
            return;
        };
        progress.heartbeat_answered(inflight_max);
        if progress.matched < last_index {
            self.send_append(from, true);
        }
        self.reads.acknowledge(from, context);
        self.release_confirmed_reads();
    }

    /// The leader's own durable index counts towards the quorum like a follower's match.
    pub(super) fn refresh_self_progress(&mut self) {
        let persisted = self.log.persisted();
        if let Some(progress) = self.tracker.get_mut(self.id) {
            progress.acknowledge(persisted);
            progress.recent_active = true;
        }
    }

    /// Advances the commit index to the quorum's match, but only over an entry of the current
    /// term (Raft §5.4.2). Returns whether it moved.
    pub(super) fn maybe_commit(&mut self) -> bool {
        let candidate = self.tracker.quorum_match();
        if self.log.term(candidate) != Some(self.term) {
            return false;
        }
        let before = self.log.committed();
        if !self.log.commit_to(candidate) {
            return false;
        }
        for index in before + 1..=candidate {
            let size = self.log.entry_size_bytes(index).map_or(0, |b| b as u64);
            self.uncommitted_bytes = self.uncommitted_bytes.saturating_sub(size);
        }
        self.on_commit_in_term();
        true
    }

    pub(super) fn handle_append(
        &mut self,
        from: NodeId,
        prev_index: u64,
        prev_term: u64,
        commit: u64,
        entries: &[Entry],
    ) {
        let committed = self.log.committed();
        if prev_index < committed {
            let reply = self.append_ack(from, committed);
            return self.send_after_persist(reply);
        }
        match self.log.maybe_append(prev_index, prev_term, entries) {
            Some(last_new) => {
                self.log.commit_to(commit.min(last_new));
                let reply = self.append_ack(from, last_new);
                self.send_after_persist(reply);
            }
            None => {
                let probe = prev_index.min(self.log.last_index());
                let (hint_index, hint_term) = self.log.find_conflict_by_term(probe, prev_term);
                self.send(
                    from,
                    Body::AppendResp {
                        reject: true,
                        index: prev_index,
                        hint_index,
                        hint_term,
                    },
                );
            }
        }
    }

    fn append_ack(&self, to: NodeId, index: u64) -> Message {
        let body = Body::AppendResp {
            reject: false,
            index,
            hint_index: 0,
            hint_term: 0,
        };
        Message::new(self.id, to, self.term, body)
    }

    pub(super) fn handle_snapshot(&mut self, from: NodeId, snapshot: Snapshot) {
        let index = snapshot.meta().index();
        let term = snapshot.meta().term();
        if index <= self.log.committed() {
            let reply = self.append_ack(from, self.log.committed());
            return self.send_after_persist(reply);
        }
        if self.log.matches(index, term) {
            self.log.commit_to(index);
        } else {
            let conf = snapshot.meta().conf().clone();
            self.log.restore(snapshot);
            self.conf_history.clear();
            self.tracker.set_conf(conf, index + 1);
        }
        let reply = self.append_ack(from, index);
        self.send_after_persist(reply);
    }
}
