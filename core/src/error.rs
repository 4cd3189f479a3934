//! Typed operating errors. Each is `#[non_exhaustive]`: match with a wildcard arm.

use core::fmt;

use crate::types::NodeId;

macro_rules! display_via_str {
    ($ty:ty) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl core::error::Error for $ty {}
    };
}

/// A [`crate::Config`] that cannot run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The node id is [`NO_NODE`](crate::NO_NODE).
    ZeroNodeId,
    /// `heartbeat_ticks` is 0.
    ZeroHeartbeatTicks,
    /// `election_ticks` is not above `heartbeat_ticks`.
    ElectionNotAboveHeartbeat,
    /// A `*_max` limit is 0.
    ZeroLimit,
    /// A bootstrap membership without this node as a voter, or with no voters.
    BootstrapWithoutSelf,
    /// Recovered entries that are not contiguous after the snapshot.
    RecoveredLogNotContiguous,
    /// A recovered commit index beyond the recovered log: committed entries were lost.
    RecoveredCommitBeyondLog,
}

impl ConfigError {
    /// A short description, as `Display` prints it.
    pub fn as_str(&self) -> &'static str {
        match self {
            ConfigError::ZeroNodeId => "node id 0 is reserved",
            ConfigError::ZeroHeartbeatTicks => "heartbeat_ticks must be at least 1",
            ConfigError::ElectionNotAboveHeartbeat => {
                "election_ticks must be greater than heartbeat_ticks"
            }
            ConfigError::ZeroLimit => "every *_max limit must be at least 1",
            ConfigError::BootstrapWithoutSelf => {
                "bootstrap membership must list this node as a voter"
            }
            ConfigError::RecoveredLogNotContiguous => {
                "recovered entries are not contiguous after the snapshot"
            }
            ConfigError::RecoveredCommitBeyondLog => {
                "recovered commit index is beyond the recovered log"
            }
        }
    }
}
display_via_str!(ConfigError);

/// Why a proposal was refused. A refused proposal is not in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProposeError {
    /// No leader is known; retry after an election.
    NoLeader,
    /// The leader is handing over leadership.
    TransferInProgress,
    /// The entry exceeds `entry_bytes_max`.
    TooLarge,
    /// Too many uncommitted bytes, or too many buffered forwards: back off.
    Busy,
    /// A membership change is still pending.
    ConfChangePending,
    /// The change is not valid for the current membership.
    InvalidConfChange,
    /// A learner may become a voter only once its log is nearly the leader's
    /// ([`LEARNER_READY_PERCENT`](crate::LEARNER_READY_PERCENT)): a voter that must first
    /// catch up counts towards the quorum without being able to vote in it.
    LearnerNotReady,
    /// This node has been removed from the cluster.
    Removed,
}

impl ProposeError {
    /// A short description, as `Display` prints it.
    pub fn as_str(&self) -> &'static str {
        match self {
            ProposeError::NoLeader => "no leader",
            ProposeError::TransferInProgress => "leadership transfer in progress",
            ProposeError::TooLarge => "proposal larger than entry_bytes_max",
            ProposeError::Busy => "too many uncommitted proposals",
            ProposeError::ConfChangePending => "a membership change is already pending",
            ProposeError::InvalidConfChange => "membership change does not apply",
            ProposeError::LearnerNotReady => "the learner has not caught up with the leader",
            ProposeError::Removed => "this node was removed from the cluster",
        }
    }
}
display_via_str!(ProposeError);

/// Why a read-index request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadIndexError {
    /// No leader is known; retry after an election.
    NoLeader,
    /// `read_index_pending_max` reads are already waiting.
    Busy,
}

impl ReadIndexError {
    /// A short description, as `Display` prints it.
    pub fn as_str(&self) -> &'static str {
        match self {
            ReadIndexError::NoLeader => "no leader",
            ReadIndexError::Busy => "too many pending reads",
        }
    }
}
display_via_str!(ReadIndexError);

/// Why a leadership transfer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransferError {
    /// This node is not the leader.
    NotLeader,
    /// The target is not a voter of the current configuration.
    NotVoter(NodeId),
    /// The target is this node.
    AlreadyLeader,
}

impl TransferError {
    /// A short description, as `Display` prints it.
    pub fn as_str(&self) -> &'static str {
        match self {
            TransferError::NotLeader => "not the leader",
            TransferError::NotVoter(_) => "transfer target is not a voter",
            TransferError::AlreadyLeader => "transfer target is already the leader",
        }
    }
}
display_via_str!(TransferError);

/// Why a message given to [`crate::Node::step`] was refused. The node's state is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StepError {
    /// The message is addressed to another node.
    WrongRecipient,
    /// A message claims to come from this node, or from node 0.
    BadSender,
    /// Entries that are not contiguous, or whose terms exceed the message's term.
    MalformedEntries,
    /// A commit index or an acknowledgement beyond this node's log, which no correct peer
    /// sends.
    IndexBeyondLog,
}

impl StepError {
    /// A short description, as `Display` prints it.
    pub fn as_str(&self) -> &'static str {
        match self {
            StepError::WrongRecipient => "message addressed to another node",
            StepError::BadSender => "message from an invalid sender",
            StepError::MalformedEntries => "message carries malformed entries",
            StepError::IndexBeyondLog => "message names an index beyond this node's log",
        }
    }
}
display_via_str!(StepError);

/// Why a compaction request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompactError {
    /// The index is not applied yet.
    NotApplied,
    /// The index is at or below the current snapshot.
    AlreadyCompacted,
}

impl CompactError {
    /// A short description, as `Display` prints it.
    pub fn as_str(&self) -> &'static str {
        match self {
            CompactError::NotApplied => "compaction index is not applied yet",
            CompactError::AlreadyCompacted => "compaction index is at or below the snapshot",
        }
    }
}
display_via_str!(CompactError);
