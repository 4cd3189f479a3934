//! What the core asks its caller to do. Drained with [`crate::Node::poll_action`].

use alloc::vec::Vec;

use crate::message::Message;
use crate::types::{Entry, HardState, NodeId, Snapshot};

/// One thing the caller must do. See the crate docs for the order and the obligations.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Action {
    /// Send this message to `message.to()`. Delivery may fail; the core retries on its own.
    Send(Message),
    /// Write this state durably, then call [`crate::Node::on_persisted`] with
    /// [`Persist::last_index`] and [`Persist::last_term`]. At most one is outstanding.
    Persist(Persist),
    /// Replace the state machine with this snapshot (it is already durable).
    ApplySnapshot(Snapshot),
    /// Apply these committed, durable entries in order. `ConfChange` entries have already
    /// taken effect in the core when this action is emitted.
    Apply(Vec<Entry>),
    /// A linearizable read `request` may be answered once the state machine has applied `index`.
    ReadReady {
        /// The id given to [`crate::Node::read_index`].
        request: u64,
        /// The commit index the leader confirmed for the read.
        index: u64,
    },
    /// The state machine has just applied `index` (if you carry out actions in order): take a
    /// snapshot of it and hand it back with [`crate::Node::compact`].
    RequestSnapshot {
        /// The index the snapshot must cover: the one just applied.
        index: u64,
    },
    /// The known leader changed (`leader` is [`crate::NO_NODE`] when unknown).
    LeaderChanged {
        /// The new leader's id, or [`crate::NO_NODE`].
        leader: NodeId,
        /// The term this node is in.
        term: u64,
    },
}

/// State to make durable, in this order: snapshot, then entries (an entry at an index that
/// already exists replaces it and everything after it), then the hard state.
#[derive(Debug, Clone)]
pub struct Persist {
    hard_state: Option<HardState>,
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
    last_index: u64,
    last_term: u64,
}

impl Persist {
    pub(crate) fn new(
        hard_state: Option<HardState>,
        snapshot: Option<Snapshot>,
        entries: Vec<Entry>,
        last: (u64, u64),
    ) -> Self {
        Persist {
            hard_state,
            snapshot,
            entries,
            last_index: last.0,
            last_term: last.1,
        }
    }

    /// A new hard state, if it changed since the last `Persist`.
    pub fn hard_state(&self) -> Option<&HardState> {
        self.hard_state.as_ref()
    }

    /// A snapshot received from the leader (or the bootstrap membership at index 0).
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// Entries to write, in index order; they replace any entry at the same index or after it.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Splits the action into its parts, so the caller can move entries without cloning.
    pub fn into_parts(self) -> (Option<HardState>, Option<Snapshot>, Vec<Entry>) {
        (self.hard_state, self.snapshot, self.entries)
    }

    /// The log's last index once this is written; pass it back to `on_persisted`.
    pub fn last_index(&self) -> u64 {
        self.last_index
    }

    /// The term of the entry at `last_index`.
    pub fn last_term(&self) -> u64 {
        self.last_term
    }
}
