//! Plain data that crosses the core's boundary: entries, hard state, membership, snapshots.

use alloc::vec::Vec;
use bytes::Bytes;
use smallvec::SmallVec;

/// A member's identity. `0` is reserved for "none" and is never a valid member.
pub type NodeId = u64;

/// The reserved "no node" value used in hard state and status.
pub const NO_NODE: NodeId = 0;

/// Whether an entry carries application data or a membership change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryKind {
    /// Opaque application data (an empty one is the leader's no-op).
    Normal,
    /// An encoded [`ConfChange`].
    ConfChange,
}

impl EntryKind {
    pub(crate) fn to_u8(self) -> u8 {
        match self {
            EntryKind::Normal => 0,
            EntryKind::ConfChange => 1,
        }
    }

    pub(crate) fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(EntryKind::Normal),
            1 => Some(EntryKind::ConfChange),
            _ => None,
        }
    }
}

/// One log entry. Its payload is reference-counted, so cloning an entry never copies data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    index: u64,
    term: u64,
    kind: EntryKind,
    data: Bytes,
}

impl Entry {
    /// Builds an entry. Storage layers use this to hand recovered entries back to the core.
    pub fn new(index: u64, term: u64, kind: EntryKind, data: Bytes) -> Self {
        Entry {
            index,
            term,
            kind,
            data,
        }
    }

    /// The entry's log index.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The term in which a leader created the entry.
    pub fn term(&self) -> u64 {
        self.term
    }

    /// Whether the entry carries application data or a membership change.
    pub fn kind(&self) -> EntryKind {
        self.kind
    }

    /// The payload: the proposal's bytes, or an encoded [`ConfChange`].
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// The payload, by value.
    pub fn into_data(self) -> Bytes {
        self.data
    }

    /// Bytes this entry counts against size limits: its payload plus a fixed header estimate.
    pub(crate) fn size_bytes(&self) -> usize {
        Entry::size_bytes_of(self.data.len())
    }

    /// [`Entry::size_bytes`] of an entry with `data_bytes` of payload.
    pub(crate) fn size_bytes_of(data_bytes: usize) -> usize {
        data_bytes + ENTRY_OVERHEAD_BYTES
    }
}

/// The per-entry overhead assumed when sizing messages and batches.
pub(crate) const ENTRY_OVERHEAD_BYTES: usize = 24;

/// The state Raft must persist before it may answer: current term, vote, and commit index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HardState {
    term: u64,
    vote: NodeId,
    commit: u64,
}

impl HardState {
    /// A hard state of `term`, `vote` ([`NO_NODE`] for none) and `commit`.
    pub fn new(term: u64, vote: NodeId, commit: u64) -> Self {
        HardState { term, vote, commit }
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        self.term
    }

    /// The node voted for in `term`, or [`NO_NODE`].
    pub fn vote(&self) -> NodeId {
        self.vote
    }

    /// The highest index known to be committed.
    pub fn commit(&self) -> u64 {
        self.commit
    }
}

/// Cluster membership: the voters and the learners (non-voting replicas). Both lists are sorted
/// and disjoint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfState {
    voters: SmallVec<[NodeId; 7]>,
    learners: SmallVec<[NodeId; 4]>,
}

impl ConfState {
    /// Builds a membership from voters and learners. Duplicates and `0` are removed, and a node
    /// listed as both is a voter.
    pub fn new(voters: &[NodeId], learners: &[NodeId]) -> Self {
        let mut conf = ConfState::default();
        for &id in voters {
            conf.add_voter(id);
        }
        for &id in learners {
            conf.add_learner(id);
        }
        conf
    }

    /// The voters, in ascending order.
    pub fn voters(&self) -> &[NodeId] {
        &self.voters
    }

    /// The learners, in ascending order.
    pub fn learners(&self) -> &[NodeId] {
        &self.learners
    }

    /// Whether `id` is a voter.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.binary_search(&id).is_ok()
    }

    /// Whether `id` is a learner.
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.binary_search(&id).is_ok()
    }

    /// Whether `id` is a voter or a learner.
    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.is_learner(id)
    }

    /// Every member, voters first, each list in ascending order.
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.voters.iter().chain(self.learners.iter()).copied()
    }

    pub(crate) fn add_voter(&mut self, id: NodeId) {
        if id == NO_NODE {
            return;
        }
        remove_sorted(&mut self.learners, id);
        if let Err(at) = self.voters.binary_search(&id) {
            self.voters.insert(at, id);
        }
    }

    pub(crate) fn add_learner(&mut self, id: NodeId) {
        if id == NO_NODE || self.is_voter(id) {
            return;
        }
        if let Err(at) = self.learners.binary_search(&id) {
            self.learners.insert(at, id);
        }
    }

    pub(crate) fn remove(&mut self, id: NodeId) {
        remove_sorted(&mut self.voters, id);
        remove_sorted(&mut self.learners, id);
    }

    /// Applies a validated change. Returns false if the change does not apply to this config.
    pub(crate) fn apply(&mut self, change: &ConfChange) -> bool {
        match change.kind() {
            ConfChangeKind::AddVoter => self.add_voter(change.node()),
            ConfChangeKind::AddLearner => {
                if self.is_voter(change.node()) {
                    return false;
                }
                self.add_learner(change.node())
            }
            ConfChangeKind::RemoveNode => {
                if !self.contains(change.node()) {
                    return false;
                }
                self.remove(change.node())
            }
        }
        true
    }
}

fn remove_sorted<const N: usize>(list: &mut SmallVec<[NodeId; N]>, id: NodeId)
where
    [NodeId; N]: smallvec::Array<Item = NodeId>,
{
    if let Ok(at) = list.binary_search(&id) {
        list.remove(at);
    }
}

/// What a membership change does. Adding a voter that is a learner promotes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfChangeKind {
    /// Adds a voter, or promotes a learner to voter.
    AddVoter,
    /// Adds a learner: a member that receives the log but does not vote.
    AddLearner,
    /// Removes a voter or a learner.
    RemoveNode,
}

/// A single-step membership change: one node is added, promoted or removed at a time.
/// `context` is opaque to the core (the runtime stores the member's addresses there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfChange {
    kind: ConfChangeKind,
    node: NodeId,
    context: Bytes,
}

impl ConfChange {
    /// A change of `kind` for `node`, with an empty context.
    pub fn new(kind: ConfChangeKind, node: NodeId) -> Self {
        ConfChange {
            kind,
            node,
            context: Bytes::new(),
        }
    }

    /// Attaches bytes the core carries with the change without reading them.
    pub fn with_context(mut self, context: Bytes) -> Self {
        self.context = context;
        self
    }

    /// The bytes attached with [`ConfChange::with_context`].
    pub fn context(&self) -> &Bytes {
        &self.context
    }

    /// What the change does.
    pub fn kind(&self) -> ConfChangeKind {
        self.kind
    }

    /// The member the change is about.
    pub fn node(&self) -> NodeId {
        self.node
    }
}

/// Where a snapshot sits in the log, and the membership as of that point.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotMeta {
    index: u64,
    term: u64,
    conf: ConfState,
}

impl SnapshotMeta {
    /// Metadata for a snapshot of the log up to `index` (whose entry has `term`).
    pub fn new(index: u64, term: u64, conf: ConfState) -> Self {
        SnapshotMeta { index, term, conf }
    }

    /// The last log index the snapshot covers.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The term of the entry at [`SnapshotMeta::index`].
    pub fn term(&self) -> u64 {
        self.term
    }

    /// The membership as of [`SnapshotMeta::index`].
    pub fn conf(&self) -> &ConfState {
        &self.conf
    }
}

/// A state-machine snapshot: metadata plus the application's opaque bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    meta: SnapshotMeta,
    data: Bytes,
}

impl Snapshot {
    /// A snapshot of `meta` holding the application's `data`.
    pub fn new(meta: SnapshotMeta, data: Bytes) -> Self {
        Snapshot { meta, data }
    }

    /// Where the snapshot sits in the log.
    pub fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }

    /// The application's bytes; empty when they were released (see
    /// [`Node::release_snapshot_data`](crate::Node::release_snapshot_data)).
    pub fn data(&self) -> &Bytes {
        &self.data
    }
}

/// A node's Raft role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// Follows a leader, or waits for one.
    Follower,
    /// Asking for pre-votes without having raised its term.
    PreCandidate,
    /// Asks for votes in a new term.
    Candidate,
    /// Leads the current term.
    Leader,
}

/// What a restarted node recovered from its storage.
#[derive(Debug, Clone, Default)]
pub struct Recovered {
    hard_state: HardState,
    snapshot: Snapshot,
    entries: Vec<Entry>,
}

impl Recovered {
    /// `snapshot` is the newest durable snapshot (index 0 if none), `entries` the durable log
    /// entries after it, contiguous and in order.
    pub fn new(hard_state: HardState, snapshot: Snapshot, entries: Vec<Entry>) -> Self {
        Recovered {
            hard_state,
            snapshot,
            entries,
        }
    }

    /// The durable term, vote and commit index.
    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    /// The newest durable snapshot (index 0 if none).
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The durable entries after the snapshot, contiguous and in order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub(crate) fn into_parts(self) -> (HardState, Snapshot, Vec<Entry>) {
        (self.hard_state, self.snapshot, self.entries)
    }
}
