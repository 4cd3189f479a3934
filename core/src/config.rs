//! Node configuration. Every limit is a named `*_max` field.

use crate::error::ConfigError;
use crate::types::{NO_NODE, NodeId};

/// How a [`crate::Node`] behaves. Build it with [`Config::new`] and the `with_*` setters.
#[derive(Debug, Clone)]
pub struct Config {
    id: NodeId,
    seed: u64,
    election_ticks: u32,
    heartbeat_ticks: u32,
    pre_vote: bool,
    check_quorum: bool,
    inflight_max: u32,
    message_bytes_max: u64,
    uncommitted_bytes_max: u64,
    entry_bytes_max: u64,
    forward_entries_max: u32,
    read_index_pending_max: u32,
    apply_bytes_max: u64,
    snapshot_interval_entries: u64,
    compaction_trailing_entries: u64,
}

impl Config {
    /// Defaults: 10 election ticks, 1 heartbeat tick, PreVote and CheckQuorum on.
    pub fn new(id: NodeId, seed: u64) -> Self {
        Config {
            id,
            seed,
            election_ticks: 10,
            heartbeat_ticks: 1,
            pre_vote: true,
            check_quorum: true,
            inflight_max: 256,
            message_bytes_max: 1 << 20,
            uncommitted_bytes_max: 64 << 20,
            entry_bytes_max: 8 << 20,
            forward_entries_max: 4096,
            read_index_pending_max: 65_536,
            apply_bytes_max: 16 << 20,
            snapshot_interval_entries: 0,
            compaction_trailing_entries: 0,
        }
    }

    /// The election timeout is drawn from [election_ticks, 2 × election_ticks).
    pub fn with_election_ticks(mut self, ticks: u32) -> Self {
        self.election_ticks = ticks;
        self
    }

    /// Ticks between the leader's heartbeats; must be below `election_ticks`.
    pub fn with_heartbeat_ticks(mut self, ticks: u32) -> Self {
        self.heartbeat_ticks = ticks;
        self
    }

    /// PreVote (default on): a node first asks whether it would win, without raising its
    /// term, so a node that rejoins after a partition does not depose a working leader.
    pub fn with_pre_vote(mut self, enabled: bool) -> Self {
        self.pre_vote = enabled;
        self
    }

    /// CheckQuorum (default on): a leader that has not heard from a quorum within an election
    /// timeout steps down, and followers that hear from a leader ignore vote requests meanwhile.
    pub fn with_check_quorum(mut self, enabled: bool) -> Self {
        self.check_quorum = enabled;
        self
    }

    /// Append messages in flight to one follower in the replicate state.
    pub fn with_inflight_max(mut self, messages: u32) -> Self {
        self.inflight_max = messages;
        self
    }

    /// Entry bytes in one append message (a single larger entry still goes alone).
    pub fn with_message_bytes_max(mut self, bytes: u64) -> Self {
        self.message_bytes_max = bytes;
        self
    }

    /// Bytes of proposals the leader holds uncommitted before it refuses new ones.
    pub fn with_uncommitted_bytes_max(mut self, bytes: u64) -> Self {
        self.uncommitted_bytes_max = bytes;
        self
    }

    /// The largest single proposal accepted.
    pub fn with_entry_bytes_max(mut self, bytes: u64) -> Self {
        self.entry_bytes_max = bytes;
        self
    }

    /// Proposals a follower buffers in one turn before forwarding them to the leader.
    pub fn with_forward_entries_max(mut self, entries: u32) -> Self {
        self.forward_entries_max = entries;
        self
    }

    /// Read-index requests waiting for confirmation.
    pub fn with_read_index_pending_max(mut self, reads: u32) -> Self {
        self.read_index_pending_max = reads;
        self
    }

    /// Entry bytes handed over in one `Apply` action.
    pub fn with_apply_bytes_max(mut self, bytes: u64) -> Self {
        self.apply_bytes_max = bytes;
        self
    }

    /// Ask the application for a snapshot every this many applied entries (0: never).
    pub fn with_snapshot_interval_entries(mut self, entries: u64) -> Self {
        self.snapshot_interval_entries = entries;
        self
    }

    /// Entries kept in memory behind a snapshot, so slightly lagging followers catch up from
    /// the log rather than from a snapshot.
    pub fn with_compaction_trailing_entries(mut self, entries: u64) -> Self {
        self.compaction_trailing_entries = entries;
        self
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The seed of the node's PRNG (election timeouts).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Ticks without a leader before a follower campaigns (the lower bound of the timeout).
    pub fn election_ticks(&self) -> u32 {
        self.election_ticks
    }

    /// Ticks between the leader's heartbeats.
    pub fn heartbeat_ticks(&self) -> u32 {
        self.heartbeat_ticks
    }

    /// Whether PreVote is on.
    pub fn pre_vote(&self) -> bool {
        self.pre_vote
    }

    /// Whether CheckQuorum is on.
    pub fn check_quorum(&self) -> bool {
        self.check_quorum
    }

    /// Append messages in flight to one follower in the replicate state.
    pub fn inflight_max(&self) -> u32 {
        self.inflight_max
    }

    /// Entry bytes in one append message.
    pub fn message_bytes_max(&self) -> u64 {
        self.message_bytes_max
    }

    /// Bytes of proposals the leader holds uncommitted before it refuses new ones.
    pub fn uncommitted_bytes_max(&self) -> u64 {
        self.uncommitted_bytes_max
    }

    /// The largest single proposal accepted, in bytes.
    pub fn entry_bytes_max(&self) -> u64 {
        self.entry_bytes_max
    }

    /// Proposals a follower buffers in one turn before forwarding them to the leader.
    pub fn forward_entries_max(&self) -> u32 {
        self.forward_entries_max
    }

    /// Read-index requests waiting for confirmation.
    pub fn read_index_pending_max(&self) -> u32 {
        self.read_index_pending_max
    }

    /// Entry bytes handed over in one `Apply` action.
    pub fn apply_bytes_max(&self) -> u64 {
        self.apply_bytes_max
    }

    /// Applied entries between snapshot requests (0: never).
    pub fn snapshot_interval_entries(&self) -> u64 {
        self.snapshot_interval_entries
    }

    /// Entries kept in memory behind a snapshot.
    pub fn compaction_trailing_entries(&self) -> u64 {
        self.compaction_trailing_entries
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.id == NO_NODE {
            return Err(ConfigError::ZeroNodeId);
        }
        if self.heartbeat_ticks == 0 {
            return Err(ConfigError::ZeroHeartbeatTicks);
        }
        if self.election_ticks <= self.heartbeat_ticks {
            return Err(ConfigError::ElectionNotAboveHeartbeat);
        }
        if self.inflight_max == 0
            || self.message_bytes_max == 0
            || self.forward_entries_max == 0
            || self.read_index_pending_max == 0
            || self.apply_bytes_max == 0
            || self.entry_bytes_max == 0
        {
            return Err(ConfigError::ZeroLimit);
        }
        Ok(())
    }
}
