//! Messages between Raft nodes. Their contents are private to the core; the application only
//! routes them (by [`Message::to`]) and moves them as bytes with [`crate::codec`].

use alloc::vec::Vec;

use bytes::Bytes;

use crate::types::{Entry, NodeId, Snapshot};

/// One Raft message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub(crate) from: NodeId,
    pub(crate) to: NodeId,
    pub(crate) term: u64,
    pub(crate) body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    PreVote {
        last_index: u64,
        last_term: u64,
    },
    PreVoteResp {
        reject: bool,
    },
    Vote {
        last_index: u64,
        last_term: u64,
        transfer: bool,
    },
    VoteResp {
        reject: bool,
    },
    Append {
        prev_index: u64,
        prev_term: u64,
        commit: u64,
        entries: Vec<Entry>,
    },
    /// On success `index` is the last index now matching the leader. On rejection it is the
    /// rejected `prev_index`, and (`hint_index`, `hint_term`) name the follower's best guess of
    /// where the logs agree, so the leader skips a whole term per round trip.
    AppendResp {
        reject: bool,
        index: u64,
        hint_index: u64,
        hint_term: u64,
    },
    Heartbeat {
        commit: u64,
        context: u64,
    },
    HeartbeatResp {
        context: u64,
    },
    Snapshot {
        snapshot: Snapshot,
    },
    /// Proposals forwarded from a follower; their index and term are assigned by the leader.
    Propose {
        entries: Vec<Entry>,
    },
    ReadIndex {
        request: u64,
    },
    ReadIndexResp {
        request: u64,
        index: u64,
    },
    TimeoutNow,
}

/// The type of a message, for routing, logging and fault injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum MessageKind {
    /// A node asks whether it would get votes, without raising its term (PreVote).
    PreVote,
    /// The answer to a `PreVote`.
    PreVoteResp,
    /// A candidate asks for a vote.
    Vote,
    /// A vote granted or refused.
    VoteResp,
    /// The leader's entries and commit index (AppendEntries).
    Append,
    /// A follower accepts or rejects an append.
    AppendResp,
    /// The leader's heartbeat, with its commit index.
    Heartbeat,
    /// A follower's answer to a heartbeat.
    HeartbeatResp,
    /// The leader's snapshot, for a follower behind its compacted log.
    Snapshot,
    /// Proposals a follower forwards to the leader.
    Propose,
    /// A read-index request a follower forwards to the leader.
    ReadIndex,
    /// The leader's read index for a forwarded request.
    ReadIndexResp,
    /// Leadership transfer: the recipient campaigns at once.
    TimeoutNow,
}

impl Message {
    pub(crate) fn new(from: NodeId, to: NodeId, term: u64, body: Body) -> Self {
        Message {
            from,
            to,
            term,
            body,
        }
    }

    /// The sender.
    pub fn from(&self) -> NodeId {
        self.from
    }

    /// The recipient: route the message to this node.
    pub fn to(&self) -> NodeId {
        self.to
    }

    /// The sender's term when it sent the message.
    pub fn term(&self) -> u64 {
        self.term
    }

    /// The message's type.
    pub fn kind(&self) -> MessageKind {
        match &self.body {
            Body::PreVote { .. } => MessageKind::PreVote,
            Body::PreVoteResp { .. } => MessageKind::PreVoteResp,
            Body::Vote { .. } => MessageKind::Vote,
            Body::VoteResp { .. } => MessageKind::VoteResp,
            Body::Append { .. } => MessageKind::Append,
            Body::AppendResp { .. } => MessageKind::AppendResp,
            Body::Heartbeat { .. } => MessageKind::Heartbeat,
            Body::HeartbeatResp { .. } => MessageKind::HeartbeatResp,
            Body::Snapshot { .. } => MessageKind::Snapshot,
            Body::Propose { .. } => MessageKind::Propose,
            Body::ReadIndex { .. } => MessageKind::ReadIndex,
            Body::ReadIndexResp { .. } => MessageKind::ReadIndexResp,
            Body::TimeoutNow => MessageKind::TimeoutNow,
        }
    }

    /// Entries carried by an append or a forwarded proposal; empty for other kinds.
    pub fn entries(&self) -> &[Entry] {
        match &self.body {
            Body::Append { entries, .. } | Body::Propose { entries } => entries,
            _ => &[],
        }
    }

    /// Whether this is a snapshot message whose bytes were released with
    /// [`Node::release_snapshot_data`](crate::Node::release_snapshot_data): the caller must put
    /// them back with [`with_snapshot_data`](Self::with_snapshot_data) before sending it.
    pub fn needs_snapshot_data(&self) -> bool {
        matches!(&self.body, Body::Snapshot { snapshot }
            if snapshot.data().is_empty() && snapshot.meta().index() > 0)
    }

    /// The message with its snapshot's bytes set to `data`; other messages are unchanged.
    #[must_use]
    pub fn with_snapshot_data(mut self, data: Bytes) -> Message {
        if let Body::Snapshot { snapshot } = &mut self.body {
            *snapshot = Snapshot::new(snapshot.meta().clone(), data);
        }
        self
    }

    /// The snapshot carried by a snapshot message.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        match &self.body {
            Body::Snapshot { snapshot } => Some(snapshot),
            _ => None,
        }
    }
}
