//! Testing support (feature `testing`): a deterministic cluster simulator with Raft's safety
//! invariants checked after every step, and the entry points of the fuzz targets.
//!
//! Everything here is driven by one seed. Time is virtual, the network, the disks and each
//! node's clock are simulated, and every random choice comes from a seeded PRNG, so a seed
//! replays exactly.
//!
//! - `cluster`: the members, the client calls, crashes and restarts, and the step loop;
//! - `config`: how to build a cluster; `faults`: the fault rates and their injection;
//! - `clocks`: each node's drifting, skewed clock, and pauses;
//! - `network`: messages in flight; `disk`: what survives a crash;
//! - `invariants`: the safety checks run after every step.

mod clocks;
mod cluster;
mod config;
pub(crate) mod disk;
mod faults;
mod fuzz;
pub(crate) mod invariants;
mod network;

pub use cluster::Cluster;
pub use config::SimConfig;
pub use disk::Disk;
pub use faults::Faults;
pub use fuzz::{fuzz_decode_message, fuzz_schedule};

/// A small seeded PRNG for tests and simulations (SplitMix64).
#[derive(Debug, Clone)]
pub struct SimRng(crate::rng::SplitMix64);

impl SimRng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SimRng(crate::rng::SplitMix64::new(seed))
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A value in [0, bound); `bound` must be non-zero.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0.below(bound)
    }

    /// True with probability `per_mille` / 1000.
    pub fn chance(&mut self, per_mille: u32) -> bool {
        per_mille > 0 && self.below(1000) < u64::from(per_mille)
    }
}

/// A snapshot message from `from` to `to` at `term`, for a runtime's tests of how it moves
/// snapshots: only the core makes messages otherwise.
pub fn snapshot_message(
    from: crate::NodeId,
    to: crate::NodeId,
    term: u64,
    snapshot: crate::Snapshot,
) -> crate::Message {
    crate::Message::new(from, to, term, crate::message::Body::Snapshot { snapshot })
}
