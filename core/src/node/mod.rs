//! The Raft node: state, constructors and the public input/query surface.
//!
//! The logic is split by concept: [`election`] (roles, timers, votes), [`replication`] (the
//! leader's appends and the follower's answers), [`reads`] (ReadIndex), [`membership`]
//! (configuration changes and compaction), and [`output`] (the action pipeline and the
//! durability barrier).

mod election;
mod membership;
pub use membership::LEARNER_READY_PERCENT;
mod output;
mod reads;
mod replication;
mod step;

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use bytes::Bytes;

use crate::action::Action;
use crate::config::Config;
use crate::error::{
    CompactError, ConfigError, ProposeError, ReadIndexError, StepError, TransferError,
};
use crate::log::RaftLog;
use crate::message::Message;
use crate::progress::{ProgressState, Tracker};
use crate::rng::SplitMix64;
use crate::types::{
    ConfChange, ConfState, Entry, EntryKind, HardState, NO_NODE, NodeId, Recovered, Role, Snapshot,
};

use self::output::Barrier;
use self::reads::ReadOnly;

/// A sans-IO Raft node. See the crate docs for the drain contract.
#[derive(Debug)]
pub struct Node {
    id: NodeId,
    config: Config,
    rng: SplitMix64,
    term: u64,
    vote: NodeId,
    leader: NodeId,
    role: Role,
    log: RaftLog,
    tracker: Tracker,
    /// Membership after each applied conf-change entry since the snapshot: (index, config).
    conf_history: Vec<(u64, ConfState)>,
    election_elapsed: u32,
    heartbeat_elapsed: u32,
    randomized_election_ticks: u32,
    /// Votes received in the current (pre-)campaign.
    votes: Vec<(NodeId, bool)>,
    /// The index of the last conf-change entry the leader appended; no other may be proposed
    /// until it is applied.
    pending_conf_index: u64,
    transferee: NodeId,
    /// Bytes of leader entries appended but not yet committed.
    uncommitted_bytes: u64,
    reads: ReadOnly,
    /// Follower proposals waiting to be forwarded in one message.
    forward: Vec<Entry>,
    /// The leader has entries or a commit index to send in the next flush.
    broadcast_pending: bool,
    barrier: Barrier,
    actions: VecDeque<Action>,
    outbox: Vec<Message>,
    /// A snapshot was requested and not yet provided through `compact`.
    snapshot_requested: bool,
}

/// A point-in-time view of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    id: NodeId,
    role: Role,
    term: u64,
    vote: NodeId,
    leader: NodeId,
    commit: u64,
    applied: u64,
    persisted: u64,
    last_index: u64,
    snapshot_index: u64,
    conf: ConfState,
    transferee: NodeId,
}

impl Status {
    /// The node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }
    /// The node's role.
    pub fn role(&self) -> Role {
        self.role
    }
    /// The node's current term.
    pub fn term(&self) -> u64 {
        self.term
    }
    /// The node voted for in the current term, or [`NO_NODE`].
    pub fn vote(&self) -> NodeId {
        self.vote
    }
    /// The known leader, or [`NO_NODE`].
    pub fn leader(&self) -> NodeId {
        self.leader
    }
    /// The highest index known to be committed.
    pub fn commit(&self) -> u64 {
        self.commit
    }
    /// The highest index handed to the application in an `Apply` or `ApplySnapshot`.
    pub fn applied(&self) -> u64 {
        self.applied
    }
    /// The durable prefix of the local log.
    pub fn persisted(&self) -> u64 {
        self.persisted
    }
    /// The last index of the local log, durable or not.
    pub fn last_index(&self) -> u64 {
        self.last_index
    }
    /// The index of the newest snapshot (0 if none).
    pub fn snapshot_index(&self) -> u64 {
        self.snapshot_index
    }
    /// The membership in effect (applied configuration changes only).
    pub fn conf(&self) -> &ConfState {
        &self.conf
    }
    /// The target of a leadership transfer in progress, or [`NO_NODE`].
    pub fn transferee(&self) -> NodeId {
        self.transferee
    }
}

/// The leader's replication view of one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressStatus {
    matched: u64,
    next: u64,
    state: ProgressState,
    recent_active: bool,
}

impl ProgressStatus {
    /// The highest index known to match the leader's log on this member.
    pub fn matched(&self) -> u64 {
        self.matched
    }
    /// The next index the leader sends this member.
    pub fn next(&self) -> u64 {
        self.next
    }
    /// How the leader replicates to this member.
    pub fn state(&self) -> ProgressState {
        self.state
    }
    /// Whether the member answered since the leader's last CheckQuorum round.
    pub fn recent_active(&self) -> bool {
        self.recent_active
    }
}

impl Node {
    /// Starts a brand-new member of a new cluster whose voters are `voters`. As in etcd, the
    /// membership becomes the first log entries (one `AddVoter` per voter, term 1, committed),
    /// so members that join later learn it from the log like any other change.
    pub fn bootstrap(config: Config, voters: &[NodeId]) -> Result<Node, ConfigError> {
        let conf = ConfState::new(voters, &[]);
        if !conf.is_voter(config.id()) {
            return Err(ConfigError::BootstrapWithoutSelf);
        }
        let entries: Vec<Entry> = conf
            .voters()
            .iter()
            .enumerate()
            .map(|(position, &id)| {
                let change = ConfChange::new(crate::types::ConfChangeKind::AddVoter, id);
                let data = crate::codec::encode_conf_change(&change);
                Entry::new(position as u64 + 1, 1, EntryKind::ConfChange, data)
            })
            .collect();
        let last = entries.len() as u64;
        let log = RaftLog::new(Snapshot::default(), entries, false);
        let mut node = Node::build(config, log, HardState::new(1, NO_NODE, 0))?;
        node.log.commit_to(last);
        node.tracker.set_conf(conf, last + 1);
        Ok(node)
    }

    /// Starts a member that joins an existing cluster: it knows no membership and waits for the
    /// leader to send it the log or a snapshot.
    pub fn join(config: Config) -> Result<Node, ConfigError> {
        let log = RaftLog::new(Snapshot::default(), Vec::new(), true);
        Node::build(config, log, HardState::default())
    }

    /// Restarts a member from what its storage recovered. Entries after the snapshot are
    /// re-applied from the snapshot's index on.
    pub fn restart(config: Config, recovered: Recovered) -> Result<Node, ConfigError> {
        let (hard_state, snapshot, entries) = recovered.into_parts();
        let mut term = snapshot.meta().term();
        for (expected, entry) in (snapshot.meta().index() + 1..).zip(entries.iter()) {
            if entry.index() != expected || entry.term() < term {
                return Err(ConfigError::RecoveredLogNotContiguous);
            }
            term = entry.term();
        }
        let last_index = snapshot.meta().index() + entries.len() as u64;
        if hard_state.commit() > last_index {
            return Err(ConfigError::RecoveredCommitBeyondLog);
        }
        let mut node = Node::build(config, RaftLog::new(snapshot, entries, true), hard_state)?;
        node.log.commit_to(hard_state.commit());
        node.barrier.mark_hard_state_persisted(node.hard_state());
        Ok(node)
    }

    fn build(config: Config, log: RaftLog, hard_state: HardState) -> Result<Node, ConfigError> {
        config.validate()?;
        let conf = log.snapshot().meta().conf().clone();
        let mut node = Node {
            id: config.id(),
            rng: SplitMix64::new(config.seed() ^ config.id().rotate_left(32)),
            term: hard_state.term(),
            vote: hard_state.vote(),
            leader: NO_NODE,
            role: Role::Follower,
            log,
            tracker: Tracker::new(conf),
            conf_history: Vec::new(),
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_election_ticks: config.election_ticks(),
            votes: Vec::new(),
            pending_conf_index: 0,
            transferee: NO_NODE,
            uncommitted_bytes: 0,
            reads: ReadOnly::default(),
            forward: Vec::new(),
            broadcast_pending: false,
            barrier: Barrier::default(),
            actions: VecDeque::new(),
            outbox: Vec::new(),
            snapshot_requested: false,
            config,
        };
        node.reset_election_timer();
        Ok(node)
    }

    /// Advances logical time by one tick.
    pub fn tick(&mut self) {
        if self.role == Role::Leader {
            self.tick_leader();
        } else {
            self.tick_election();
        }
    }

    /// Handles a message from a peer. A refused message leaves the node unchanged.
    pub fn step(&mut self, message: Message) -> Result<(), StepError> {
        self.validate(&message)?;
        self.step_validated(message);
        Ok(())
    }

    /// Proposes application data. On the leader it is appended at once; on a follower it is
    /// forwarded to the leader. Success means "in flight", not "committed": watch `Apply`.
    pub fn propose(&mut self, data: Bytes) -> Result<(), ProposeError> {
        self.propose_entry(EntryKind::Normal, data)
    }

    /// Proposes a single-step membership change. It takes effect when applied. The leader
    /// refuses to promote a learner (`AddVoter` of a learner) that holds less than
    /// [`LEARNER_READY_PERCENT`] of its log; a follower forwards the change, and the leader
    /// drops a refused one.
    pub fn propose_conf_change(&mut self, change: &ConfChange) -> Result<(), ProposeError> {
        if self.role == Role::Leader {
            self.check_conf_change(change)?;
        }
        self.propose_entry(
            EntryKind::ConfChange,
            crate::codec::encode_conf_change(change),
        )
    }

    /// Asks for a linearizable read. `ReadReady { request, index }` follows once leadership is
    /// confirmed; a read that cannot be confirmed (the leader changes) is dropped silently, so
    /// callers time out.
    pub fn read_index(&mut self, request: u64) -> Result<(), ReadIndexError> {
        self.request_read(request)
    }

    /// Hands leadership to `to` once its log is caught up.
    pub fn transfer_leader(&mut self, to: NodeId) -> Result<(), TransferError> {
        self.start_transfer(to)
    }

    /// Reports that the `Persist` ending at (`index`, `term`) is durable. Returns false (and
    /// does nothing) if no such write is outstanding: the caller's bookkeeping and the core's
    /// disagree, which the caller must treat as a broken invariant.
    #[must_use]
    pub fn on_persisted(&mut self, index: u64, term: u64) -> bool {
        self.persisted(index, term)
    }

    /// Drops the bytes of the snapshot at `index` (the latest one) from memory, once the caller
    /// can read them back from its own storage: a state machine snapshot is as large as the
    /// state machine, and holding it only for a member that might lag doubles the memory.
    /// Snapshot messages then carry no bytes ([`Message::needs_snapshot_data`]); the caller
    /// fills them in before sending. Returns false if `index` is not the latest snapshot.
    #[must_use]
    pub fn release_snapshot_data(&mut self, index: u64) -> bool {
        self.log.release_snapshot_data(index)
    }

    /// Compacts the log up to `index` (applied) with the application's snapshot of it. Returns
    /// the snapshot (with its term and membership) for the caller to store.
    pub fn compact(&mut self, index: u64, data: Bytes) -> Result<Snapshot, CompactError> {
        self.compact_to(index, data)
    }

    /// Reports that messages to `to` are not getting through, so replication falls back to
    /// probing (and a snapshot in flight is retried).
    pub fn report_unreachable(&mut self, to: NodeId) {
        if self.role != Role::Leader {
            return;
        }
        if let Some(progress) = self.tracker.get_mut(to) {
            if progress.state != ProgressState::Probe {
                progress.become_probe();
            }
        }
    }

    /// The next action, or `None` when the node has nothing left to do this turn.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        loop {
            if let Some(action) = self.actions.pop_front() {
                return Some(action);
            }
            if !self.flush() {
                return None;
            }
        }
    }

    /// A point-in-time view of this node.
    pub fn status(&self) -> Status {
        Status {
            id: self.id,
            role: self.role,
            term: self.term,
            vote: self.vote,
            leader: self.leader,
            commit: self.log.committed(),
            applied: self.log.applied(),
            persisted: self.log.persisted(),
            last_index: self.log.last_index(),
            snapshot_index: self.log.snapshot().meta().index(),
            conf: self.tracker.conf().clone(),
            transferee: self.transferee,
        }
    }

    /// The leader's view of member `id`; `None` on followers or for non-members.
    pub fn progress(&self, id: NodeId) -> Option<ProgressStatus> {
        if self.role != Role::Leader {
            return None;
        }
        let progress = self.tracker.get(id)?;
        Some(ProgressStatus {
            matched: progress.matched,
            next: progress.next,
            state: progress.state,
            recent_active: progress.recent_active,
        })
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    pub(crate) fn hard_state(&self) -> HardState {
        HardState::new(self.term, self.vote, self.log.committed())
    }

    /// A node that may campaign: a voter with no snapshot install pending.
    fn promotable(&self) -> bool {
        self.tracker.conf().is_voter(self.id) && !self.log.snapshot_install_pending()
    }

    fn send(&mut self, to: NodeId, body: crate::message::Body) {
        self.outbox.push(Message::new(self.id, to, self.term, body));
    }
}

#[cfg(any(test, feature = "testing"))]
impl Node {
    /// Test view: the entry at `index` if it is in memory.
    pub fn log_entry(&self, index: u64) -> Option<Entry> {
        self.log.entry(index)
    }

    /// Test view: the term at `index`, or `None` if compacted or beyond the log.
    pub fn log_term(&self, index: u64) -> Option<u64> {
        self.log.term(index)
    }

    /// Test view: the first index still in memory.
    pub fn log_first_index(&self) -> u64 {
        self.log.first_index()
    }

    /// Test view: the leader's in-flight append count to `id`.
    pub fn inflight_to(&self, id: NodeId) -> usize {
        self.tracker.get(id).map_or(0, |p| p.inflight_len())
    }

    /// Test view: checks the node's internal invariants, panicking on a violation.
    pub fn assert_invariants(&self) {
        self.log.assert_invariants();
        assert!(self.vote == NO_NODE || self.term > 0);
        if self.role == Role::Leader {
            assert_eq!(self.leader, self.id);
        }
    }
}

#[cfg(test)]
impl Node {
    /// Drives a role transition directly, so tests can prove that the invalid ones panic.
    pub(crate) fn transition_to(&mut self, role: Role) {
        match role {
            Role::Follower => self.become_follower(self.term, NO_NODE),
            Role::PreCandidate => self.become_pre_candidate(),
            Role::Candidate => self.become_candidate(),
            Role::Leader => self.become_leader(),
        }
    }
}
