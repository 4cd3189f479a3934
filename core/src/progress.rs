//! The leader's view of each follower: match/next indexes, flow-control state, and the quorum
//! arithmetic over the voters.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::types::{ConfState, NodeId};

/// How the leader replicates to one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProgressState {
    /// Position unknown: one append at a time until the follower answers.
    Probe,
    /// Position known: appends are pipelined up to `inflight_max`.
    Replicate,
    /// A snapshot is on its way; appends wait until it is acknowledged.
    Snapshot,
}

#[derive(Debug, Clone)]
pub(crate) struct Progress {
    pub(crate) matched: u64,
    pub(crate) next: u64,
    pub(crate) state: ProgressState,
    /// In Probe: an append was sent and no answer has come since the last heartbeat.
    pub(crate) probe_sent: bool,
    pub(crate) pending_snapshot: u64,
    /// Heard from since the last CheckQuorum round.
    pub(crate) recent_active: bool,
    /// Last index of each append in flight, oldest first (Replicate state only).
    inflight: VecDeque<u64>,
    /// Heartbeat answers seen while a snapshot is outstanding; the snapshot is presumed lost
    /// after `SNAPSHOT_STALL_HEARTBEATS_MAX` of them.
    snapshot_stall_heartbeats: u32,
}

/// Heartbeat round trips after which an unacknowledged snapshot is sent again.
const SNAPSHOT_STALL_HEARTBEATS_MAX: u32 = 8;

impl Progress {
    pub(crate) fn new(next: u64) -> Self {
        Progress {
            matched: 0,
            next,
            state: ProgressState::Probe,
            probe_sent: false,
            pending_snapshot: 0,
            recent_active: false,
            inflight: VecDeque::new(),
            snapshot_stall_heartbeats: 0,
        }
    }

    pub(crate) fn become_probe(&mut self) {
        if self.state == ProgressState::Snapshot {
            self.next = (self.matched + 1).max(self.pending_snapshot + 1);
        } else {
            self.next = self.matched + 1;
        }
        self.reset_state(ProgressState::Probe);
    }

    pub(crate) fn become_replicate(&mut self) {
        self.next = self.matched + 1;
        self.reset_state(ProgressState::Replicate);
    }

    pub(crate) fn become_snapshot(&mut self, index: u64) {
        self.reset_state(ProgressState::Snapshot);
        self.pending_snapshot = index;
    }

    fn reset_state(&mut self, state: ProgressState) {
        self.state = state;
        self.probe_sent = false;
        self.pending_snapshot = 0;
        self.snapshot_stall_heartbeats = 0;
        self.inflight.clear();
    }

    /// A heartbeat answer proves the follower is reachable: unblock whatever flow control
    /// might be waiting on a lost message.
    pub(crate) fn heartbeat_answered(&mut self, inflight_max: u32) {
        self.recent_active = true;
        match self.state {
            ProgressState::Probe => self.probe_sent = false,
            ProgressState::Replicate => {
                // A lost append would otherwise hold its slot forever.
                if self.inflight.len() >= inflight_max as usize {
                    self.inflight.pop_front();
                }
            }
            ProgressState::Snapshot => {
                self.snapshot_stall_heartbeats += 1;
                if self.snapshot_stall_heartbeats >= SNAPSHOT_STALL_HEARTBEATS_MAX {
                    self.next = self.matched + 1;
                    self.reset_state(ProgressState::Probe);
                }
            }
        }
    }

    /// Whether the leader must hold further appends to this follower.
    pub(crate) fn is_paused(&self, inflight_max: u32) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflight.len() >= inflight_max as usize,
            ProgressState::Snapshot => true,
        }
    }

    /// Records an append ending at `last_index` that was just sent. The sender checks
    /// [`Progress::is_paused`] first, so a full in-flight window here is a flow-control bug.
    pub(crate) fn sent_append(&mut self, last_index: u64, entry_count: usize, inflight_max: u32) {
        match self.state {
            ProgressState::Replicate => {
                if entry_count > 0 {
                    let inflight = self.inflight.len();
                    assert!(
                        inflight < inflight_max as usize,
                        "append ending at index {last_index} sent into a full in-flight window \
                         ({inflight} of {inflight_max}): the sender did not check is_paused"
                    );
                    self.next = last_index + 1;
                    self.inflight.push_back(last_index);
                }
            }
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Snapshot => {}
        }
    }

    /// A success acknowledgement up to `index`. Returns whether `matched` moved.
    pub(crate) fn acknowledge(&mut self, index: u64) -> bool {
        let moved = index > self.matched;
        if moved {
            self.matched = index;
            self.probe_sent = false;
        }
        self.next = self.next.max(index + 1);
        while self.inflight.front().is_some_and(|&last| last <= index) {
            self.inflight.pop_front();
        }
        moved
    }

    /// A rejection of the append at `rejected` with a follower hint. Returns whether the
    /// rejection was current (not a stale answer) and `next` moved back.
    pub(crate) fn reject(&mut self, rejected: u64, next_probe: u64) -> bool {
        if self.state == ProgressState::Replicate {
            if rejected <= self.matched {
                return false;
            }
            self.next = self.matched + 1;
            return true;
        }
        if self.next == 0 || self.next - 1 != rejected {
            return false;
        }
        self.next = next_probe.min(rejected).max(self.matched + 1).max(1);
        self.probe_sent = false;
        true
    }

    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn inflight_len(&self) -> usize {
        self.inflight.len()
    }
}

/// Progress for every member, kept sorted by id so iteration is deterministic.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tracker {
    conf: ConfState,
    progress: Vec<(NodeId, Progress)>,
}

impl Tracker {
    pub(crate) fn new(conf: ConfState) -> Self {
        Tracker {
            conf,
            progress: Vec::new(),
        }
    }

    pub(crate) fn conf(&self) -> &ConfState {
        &self.conf
    }

    /// Replaces the membership, keeping progress of members that remain.
    pub(crate) fn set_conf(&mut self, conf: ConfState, next: u64) {
        self.progress.retain(|(id, _)| conf.contains(*id));
        for id in conf.members() {
            if let Err(at) = self.progress.binary_search_by_key(&id, |(id, _)| *id) {
                self.progress.insert(at, (id, Progress::new(next)));
            }
        }
        self.conf = conf;
    }

    pub(crate) fn reset_all(&mut self, next: u64) {
        let members: Vec<NodeId> = self.conf.members().collect();
        self.progress.clear();
        for id in members {
            self.progress.push((id, Progress::new(next)));
        }
        self.progress.sort_by_key(|(id, _)| *id);
    }

    pub(crate) fn clear(&mut self) {
        self.progress.clear();
    }

    pub(crate) fn get(&self, id: NodeId) -> Option<&Progress> {
        let at = self
            .progress
            .binary_search_by_key(&id, |(id, _)| *id)
            .ok()?;
        Some(&self.progress[at].1)
    }

    pub(crate) fn get_mut(&mut self, id: NodeId) -> Option<&mut Progress> {
        let at = self
            .progress
            .binary_search_by_key(&id, |(id, _)| *id)
            .ok()?;
        Some(&mut self.progress[at].1)
    }

    pub(crate) fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.progress.iter().map(|(id, _)| *id)
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (NodeId, &mut Progress)> {
        self.progress
            .iter_mut()
            .map(|(id, progress)| (*id, progress))
    }

    /// The highest index a majority of voters has matched.
    pub(crate) fn quorum_match(&self) -> u64 {
        let mut matched: Vec<u64> = Vec::with_capacity(self.conf.voters().len());
        for &voter in self.conf.voters() {
            matched.push(self.get(voter).map_or(0, |p| p.matched));
        }
        quorum_index(&mut matched)
    }

    /// Whether the voters in `granted` form a majority.
    pub(crate) fn has_quorum(&self, granted: impl Fn(NodeId) -> bool) -> bool {
        let count = self.conf.voters().iter().filter(|&&id| granted(id)).count();
        is_majority(count, self.conf.voters().len())
    }

    /// Whether the voters in `rejected` make a majority impossible.
    pub(crate) fn quorum_impossible(&self, rejected: impl Fn(NodeId) -> bool) -> bool {
        let voters = self.conf.voters().len();
        let count = self
            .conf
            .voters()
            .iter()
            .filter(|&&id| rejected(id))
            .count();
        voters > 0 && !is_majority(voters - count, voters)
    }
}

/// Whether `count` of `voters` is a majority (n/2 + 1). No voters: never.
pub fn is_majority(count: usize, voters: usize) -> bool {
    voters > 0 && count > voters / 2
}

/// The largest value that a majority of `values` is at or above. Sorts `values`.
/// Empty input gives 0 (nothing can commit without voters).
pub fn quorum_index(values: &mut [u64]) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable_by(|a, b| b.cmp(a));
    values[values.len() / 2]
}
