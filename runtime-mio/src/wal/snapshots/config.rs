//! The snapshot store's limits.

/// Limits for the snapshot store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotConfig {
    snapshot_bytes_max: u64,
    snapshot_files_max: usize,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        Self {
            snapshot_bytes_max: 8 << 30,
            snapshot_files_max: 3,
        }
    }
}

impl SnapshotConfig {
    /// Largest snapshot file accepted on save or load.
    #[must_use]
    pub fn with_snapshot_bytes_max(mut self, bytes: u64) -> Self {
        self.snapshot_bytes_max = bytes;
        self
    }
    /// How many snapshot files `retain` keeps (at least 1).
    #[must_use]
    pub fn with_snapshot_files_max(mut self, files: usize) -> Self {
        self.snapshot_files_max = files.max(1);
        self
    }
    /// Largest snapshot file.
    pub fn snapshot_bytes_max(&self) -> u64 {
        self.snapshot_bytes_max
    }
    /// Snapshot files kept.
    pub fn snapshot_files_max(&self) -> usize {
        self.snapshot_files_max
    }
}
