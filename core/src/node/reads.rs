//! ReadIndex: linearizable reads confirmed by a quorum heartbeat round in the leader's term.
//!
//! A read gets the commit index at arrival and a sequence number. Every heartbeat carries the
//! newest sequence number; once a quorum of voters has answered a heartbeat carrying a number
//! at or above the read's, no newer leader can have existed when the read arrived, so serving
//! the state machine at that commit index is linearizable. A leader that has not yet committed
//! an entry of its own term does not know the true commit index, so reads wait for that first.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::Node;
use crate::action::Action;
use crate::error::ReadIndexError;
use crate::message::Body;
use crate::types::{NO_NODE, NodeId, Role};

#[derive(Debug, Clone, Copy)]
struct PendingRead {
    sequence: u64,
    from: NodeId,
    request: u64,
    index: u64,
}

#[derive(Debug, Default)]
pub(super) struct ReadOnly {
    /// Reads waiting for the leader's first commit in its term: (from, request).
    waiting_commit: Vec<(NodeId, u64)>,
    pending: VecDeque<PendingRead>,
    /// The newest sequence number handed out.
    sequence: u64,
    /// The newest sequence number carried by a heartbeat already sent.
    sequence_sent: u64,
    /// The highest heartbeat context each peer has answered.
    acknowledged: Vec<(NodeId, u64)>,
}

impl ReadOnly {
    pub(super) fn clear(&mut self) {
        self.waiting_commit.clear();
        self.pending.clear();
        self.acknowledged.clear();
    }

    fn len(&self) -> usize {
        self.waiting_commit.len() + self.pending.len()
    }

    /// The context for the next heartbeat; marks the newest reads as covered by it.
    pub(super) fn heartbeat_context(&mut self) -> u64 {
        self.sequence_sent = self.sequence;
        self.sequence
    }

    pub(super) fn acknowledge(&mut self, from: NodeId, context: u64) {
        match self.acknowledged.iter_mut().find(|(id, _)| *id == from) {
            Some((_, seen)) => *seen = (*seen).max(context),
            None => self.acknowledged.push((from, context)),
        }
    }

    fn acknowledged_by(&self, id: NodeId, sequence: u64) -> bool {
        self.acknowledged
            .iter()
            .any(|&(peer, seen)| peer == id && seen >= sequence)
    }

    /// Whether reads need a heartbeat round that has not been sent yet.
    pub(super) fn needs_heartbeat(&self) -> bool {
        self.sequence > self.sequence_sent
    }
}

impl Node {
    pub(super) fn request_read(&mut self, request: u64) -> Result<(), ReadIndexError> {
        if self.reads.len() >= self.config.read_index_pending_max() as usize {
            return Err(ReadIndexError::Busy);
        }
        match self.role {
            Role::Leader => {
                self.leader_read(self.id, request);
                Ok(())
            }
            _ if self.leader == NO_NODE => Err(ReadIndexError::NoLeader),
            _ => {
                let leader = self.leader;
                self.send(leader, Body::ReadIndex { request });
                Ok(())
            }
        }
    }

    pub(super) fn leader_read(&mut self, from: NodeId, request: u64) {
        if self.reads.len() >= self.config.read_index_pending_max() as usize {
            return;
        }
        if self.log.term(self.log.committed()) != Some(self.term) {
            self.reads.waiting_commit.push((from, request));
            return;
        }
        let index = self.log.committed();
        if self.tracker.conf().voters() == [self.id] {
            return self.answer_read(from, request, index);
        }
        if self.reads.sequence == self.reads.sequence_sent {
            self.reads.sequence += 1;
        }
        let sequence = self.reads.sequence;
        self.reads.pending.push_back(PendingRead {
            sequence,
            from,
            request,
            index,
        });
    }

    fn answer_read(&mut self, from: NodeId, request: u64, index: u64) {
        if from == self.id {
            self.actions.push_back(Action::ReadReady { request, index });
        } else {
            self.send(from, Body::ReadIndexResp { request, index });
        }
    }

    /// The leader's first commit in its term: reads parked until now can proceed.
    pub(super) fn on_commit_in_term(&mut self) {
        let waiting = core::mem::take(&mut self.reads.waiting_commit);
        for (from, request) in waiting {
            self.leader_read(from, request);
        }
    }

    pub(super) fn release_confirmed_reads(&mut self) {
        while let Some(read) = self.reads.pending.front().copied() {
            let id = self.id;
            let reads = &self.reads;
            let confirmed = self
                .tracker
                .has_quorum(|voter| voter == id || reads.acknowledged_by(voter, read.sequence));
            if !confirmed {
                break;
            }
            self.reads.pending.pop_front();
            self.answer_read(read.from, read.request, read.index);
        }
    }
}
