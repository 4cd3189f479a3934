//! How to build a simulated cluster.

use super::faults::Faults;

/// How to build a simulated cluster.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub(super) nodes: usize,
    pub(super) seed: u64,
    pub(super) election_ticks: u32,
    pub(super) heartbeat_ticks: u32,
    pub(super) snapshot_interval_entries: u64,
    pub(super) message_bytes_max: u64,
    pub(super) check_invariants: bool,
    pub(super) faults: Faults,
}

impl SimConfig {
    /// A cluster of `nodes` voters run from `seed`: 10 election ticks, 2 heartbeat ticks,
    /// a snapshot every 64 entries, 4 KiB appends, invariant checks on and no faults.
    pub fn new(nodes: usize, seed: u64) -> Self {
        SimConfig {
            nodes,
            seed,
            election_ticks: 10,
            heartbeat_ticks: 2,
            snapshot_interval_entries: 64,
            message_bytes_max: 4096,
            check_invariants: true,
            faults: Faults::none(),
        }
    }

    /// The faults of the run. The clock of each node (its rate and skew) is drawn once, when
    /// the cluster is built, from these faults' clock range.
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Invariant checks cost more than the protocol itself; benchmarks turn them off.
    pub fn with_invariant_checks(mut self, enabled: bool) -> Self {
        self.check_invariants = enabled;
        self
    }

    /// 0 disables snapshots.
    pub fn with_snapshot_interval_entries(mut self, entries: u64) -> Self {
        self.snapshot_interval_entries = entries;
        self
    }

    /// Small by default, so tests exercise multi-message catch-up.
    pub fn with_message_bytes_max(mut self, bytes: u64) -> Self {
        self.message_bytes_max = bytes;
        self
    }

    /// The number of voters the cluster starts with.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// The nodes' election ticks.
    pub fn election_ticks(&self) -> u32 {
        self.election_ticks
    }

    /// The seed of the run.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The faults of the run.
    pub fn faults(&self) -> Faults {
        self.faults
    }
}
