//! What a snapshot covers, and a snapshot loaded whole.

use bytes::Bytes;

/// What a snapshot covers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotMeta {
    index: u64,
    term: u64,
    voters: Vec<u64>,
    learners: Vec<u64>,
}

impl SnapshotMeta {
    /// Metadata for a snapshot at (index, term) with this membership.
    pub fn new(index: u64, term: u64, voters: Vec<u64>, learners: Vec<u64>) -> Self {
        Self {
            index,
            term,
            voters,
            learners,
        }
    }
    /// Last index covered.
    pub fn index(&self) -> u64 {
        self.index
    }
    /// Term of that entry.
    pub fn term(&self) -> u64 {
        self.term
    }
    /// Voting members' node ids.
    pub fn voters(&self) -> &[u64] {
        &self.voters
    }
    /// Learners' node ids.
    pub fn learners(&self) -> &[u64] {
        &self.learners
    }
}

/// A loaded snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    meta: SnapshotMeta,
    data: Bytes,
}

impl Snapshot {
    pub(super) fn new(meta: SnapshotMeta, data: Bytes) -> Snapshot {
        Snapshot { meta, data }
    }
    /// The metadata.
    pub fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }
    /// The state machine's bytes.
    pub fn data(&self) -> &Bytes {
        &self.data
    }
    /// Splits into metadata and data.
    pub fn into_parts(self) -> (SnapshotMeta, Bytes) {
        (self.meta, self.data)
    }
}
