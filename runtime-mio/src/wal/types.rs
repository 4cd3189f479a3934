use std::mem;

use bytes::Bytes;

use super::error::WalError;
use super::record;
use super::segment::HEADER_BYTES;

/// One log entry as the WAL stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    index: u64,
    term: u64,
    kind: Option<EntryKind>,
    data: Bytes,
}

/// What an entry's payload is, as its writer declared it. The WAL stores it beside the entry,
/// so a reader never has to guess it from the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// Application data (for tallyd, an encoded kvstore request or the leader's no-op).
    Normal,
    /// A membership change.
    ConfChange,
}

impl EntryKind {
    pub(crate) fn to_u8(self) -> u8 {
        match self {
            EntryKind::Normal => 0,
            EntryKind::ConfChange => 1,
        }
    }

    pub(crate) fn from_u8(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(EntryKind::Normal),
            1 => Some(EntryKind::ConfChange),
            _ => None,
        }
    }
}

impl Entry {
    /// Makes an entry.
    pub fn new(index: u64, term: u64, kind: EntryKind, data: Bytes) -> Self {
        Self {
            index,
            term,
            kind: Some(kind),
            data,
        }
    }
    /// An entry read from a record of the first format, which did not store the kind.
    pub(crate) fn without_kind(index: u64, term: u64, data: Bytes) -> Self {
        Self {
            index,
            term,
            kind: None,
            data,
        }
    }
    /// The log index.
    pub fn index(&self) -> u64 {
        self.index
    }
    /// The term the entry was proposed in.
    pub fn term(&self) -> u64 {
        self.term
    }
    /// What the payload is; `None` only for an entry written by the first WAL format, which
    /// did not record it (its reader must tell from the payload).
    pub fn kind(&self) -> Option<EntryKind> {
        self.kind
    }
    /// The payload.
    pub fn data(&self) -> &Bytes {
        &self.data
    }
    /// Takes the payload.
    pub fn into_data(self) -> Bytes {
        self.data
    }
}

/// Raft's hard state: the current term, the vote in it, and the commit index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HardState {
    term: u64,
    vote: u64,
    commit: u64,
}

impl HardState {
    /// Makes a hard state. `vote` is 0 when the node has not voted in `term`.
    pub fn new(term: u64, vote: u64, commit: u64) -> Self {
        Self { term, vote, commit }
    }
    /// The current term.
    pub fn term(&self) -> u64 {
        self.term
    }
    /// The node voted for in this term, or 0.
    pub fn vote(&self) -> u64 {
        self.vote
    }
    /// The commit index.
    pub fn commit(&self) -> u64 {
        self.commit
    }
}

/// Records that a snapshot at (index, term) is durable; the log before it may be dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SnapshotMarker {
    index: u64,
    term: u64,
}

impl SnapshotMarker {
    /// Makes a marker.
    pub fn new(index: u64, term: u64) -> Self {
        Self { index, term }
    }
    /// The last index the snapshot covers.
    pub fn index(&self) -> u64 {
        self.index
    }
    /// The term of that entry.
    pub fn term(&self) -> u64 {
        self.term
    }
}

/// What one `Persist` action asks for. A batch is written atomically.
///
/// Replay applies, in order: the snapshot marker, the entries (the first entry may start at an
/// index that already exists: that entry and everything after it are replaced), the hard state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    hard_state: Option<HardState>,
    entries: Vec<Entry>,
    snapshot: Option<SnapshotMarker>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the hard state.
    #[must_use]
    pub fn with_hard_state(mut self, hard_state: HardState) -> Self {
        self.hard_state = Some(hard_state);
        self
    }
    /// Sets the entries. They must have consecutive indexes.
    #[must_use]
    pub fn with_entries(mut self, entries: Vec<Entry>) -> Self {
        self.entries = entries;
        self
    }
    /// Sets the snapshot marker.
    #[must_use]
    pub fn with_snapshot(mut self, snapshot: SnapshotMarker) -> Self {
        self.snapshot = Some(snapshot);
        self
    }
    /// Adds one entry at the end.
    pub fn push_entry(&mut self, entry: Entry) {
        self.entries.push(entry);
    }
    /// The hard state, if any.
    pub fn hard_state(&self) -> Option<HardState> {
        self.hard_state
    }
    /// The entries.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
    /// The snapshot marker, if any.
    pub fn snapshot(&self) -> Option<SnapshotMarker> {
        self.snapshot
    }
    /// True when the batch carries nothing.
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none() && self.entries.is_empty() && self.snapshot.is_none()
    }
    /// Bytes this batch takes on disk, including a truncation record if one is needed.
    pub fn encoded_bytes(&self) -> u64 {
        record::batch_bytes(self)
    }

    /// Splits this batch into batches of at most `bytes_max` encoded bytes each, to submit in
    /// order: the snapshot marker goes in the first and the hard state in the last, so every
    /// durable prefix is a valid log (entries whose commit is not yet recorded). A follower
    /// catching up can be handed more entries in one write than one batch may hold.
    ///
    /// # Panics
    /// If one entry alone exceeds `bytes_max` (the WAL refuses such a record anyway).
    pub fn split(self, bytes_max: u64) -> Vec<Batch> {
        if self.encoded_bytes() <= bytes_max {
            return vec![self];
        }
        let Batch {
            hard_state,
            entries,
            snapshot,
        } = self;
        let mut batches = Vec::new();
        let mut current = Batch {
            hard_state: None,
            entries: Vec::new(),
            snapshot,
        };
        let mut current_bytes = current.encoded_bytes();
        // The first entry of a batch brings the truncation record with it.
        let first_entry_bytes =
            |entry: &Entry| record::entry_bytes(entry) + record::TRUNCATE_BYTES as u64;
        for entry in entries {
            let mut added = if current.entries.is_empty() {
                first_entry_bytes(&entry)
            } else {
                record::entry_bytes(&entry)
            };
            if current_bytes + added > bytes_max && !current.is_empty() {
                batches.push(mem::take(&mut current));
                added = first_entry_bytes(&entry);
                current_bytes = 0;
            }
            assert!(
                current_bytes + added <= bytes_max,
                "an entry of {added} bytes exceeds a batch of {bytes_max}"
            );
            current_bytes += added;
            current.entries.push(entry);
        }
        if let Some(hard_state) = hard_state {
            if current_bytes + record::HARD_STATE_BYTES as u64 > bytes_max {
                batches.push(mem::take(&mut current));
            }
            current.hard_state = Some(hard_state);
        }
        batches.push(current);
        batches
    }
}

/// A durability report: everything appended up to `seq` is on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Durable {
    seq: u64,
    last_index: u64,
    last_term: u64,
    hard_state: Option<HardState>,
    snapshot: Option<SnapshotMarker>,
}

impl Durable {
    pub(crate) fn new(
        seq: u64,
        last: (u64, u64),
        hard_state: Option<HardState>,
        snapshot: Option<SnapshotMarker>,
    ) -> Self {
        Self {
            seq,
            last_index: last.0,
            last_term: last.1,
            hard_state,
            snapshot,
        }
    }
    /// Sequence number of the last batch covered (as returned by `append`).
    pub fn seq(&self) -> u64 {
        self.seq
    }
    /// Index of the last durable log entry: pass to core's `on_persisted(index, term)`.
    pub fn last_index(&self) -> u64 {
        self.last_index
    }
    /// Term of the last durable log entry.
    pub fn last_term(&self) -> u64 {
        self.last_term
    }
    /// The latest durable hard state.
    pub fn hard_state(&self) -> Option<HardState> {
        self.hard_state
    }
    /// The latest durable snapshot marker.
    pub fn snapshot(&self) -> Option<SnapshotMarker> {
        self.snapshot
    }
}

/// Limits and sizes for the WAL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalConfig {
    segment_bytes: u64,
    record_bytes_max: u64,
    batch_bytes_max: u64,
    batch_queue_max: usize,
    completion_queue_max: usize,
}

impl Default for WalConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            record_bytes_max: 8 << 20,
            batch_bytes_max: 16 << 20,
            batch_queue_max: 1024,
            completion_queue_max: 1024,
        }
    }
}

impl WalConfig {
    /// Preallocated size of each segment file.
    #[must_use]
    pub fn with_segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes;
        self
    }
    /// Largest encoded record (header included).
    #[must_use]
    pub fn with_record_bytes_max(mut self, bytes: u64) -> Self {
        self.record_bytes_max = bytes;
        self
    }
    /// Largest encoded batch, and the most bytes one group commit writes.
    #[must_use]
    pub fn with_batch_bytes_max(mut self, bytes: u64) -> Self {
        self.batch_bytes_max = bytes;
        self
    }
    /// Bound of the WAL thread's submission queue, in batches.
    #[must_use]
    pub fn with_batch_queue_max(mut self, batches: usize) -> Self {
        self.batch_queue_max = batches;
        self
    }
    /// Bound of the WAL thread's completion queue, in reports.
    #[must_use]
    pub fn with_completion_queue_max(mut self, reports: usize) -> Self {
        self.completion_queue_max = reports;
        self
    }
    /// Preallocated size of each segment file.
    pub fn segment_bytes(&self) -> u64 {
        self.segment_bytes
    }
    /// Largest encoded record.
    pub fn record_bytes_max(&self) -> u64 {
        self.record_bytes_max
    }
    /// Largest encoded batch / group commit.
    pub fn batch_bytes_max(&self) -> u64 {
        self.batch_bytes_max
    }
    /// Bound of the submission queue.
    pub fn batch_queue_max(&self) -> usize {
        self.batch_queue_max
    }
    /// Bound of the completion queue.
    pub fn completion_queue_max(&self) -> usize {
        self.completion_queue_max
    }

    pub(crate) fn validate(&self) -> Result<(), WalError> {
        if self.segment_bytes > u64::from(u32::MAX) {
            return Err(WalError::InvalidConfig("segment_bytes must fit in a u32"));
        }
        let need = HEADER_BYTES as u64 + record::SEGMENT_HEAD_BYTES + self.batch_bytes_max;
        if self.segment_bytes < need {
            return Err(WalError::InvalidConfig(
                "segment_bytes must hold a header, a state record and batch_bytes_max",
            ));
        }
        if self.record_bytes_max > self.batch_bytes_max {
            return Err(WalError::InvalidConfig(
                "record_bytes_max exceeds batch_bytes_max",
            ));
        }
        if self.record_bytes_max < record::SMALLEST_RECORD_MAX {
            return Err(WalError::InvalidConfig("record_bytes_max is too small"));
        }
        if self.batch_queue_max == 0 || self.completion_queue_max == 0 {
            return Err(WalError::InvalidConfig("queue bounds must be at least 1"));
        }
        Ok(())
    }
}
