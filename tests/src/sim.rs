//! The seed-sweep harness over `tally_core::testing::Cluster`.
//!
//! `SIM_SEED=<n>` replays one seed; `SIM_SEEDS=<count>` runs that many seeds (default 500).

use tally_core::testing::{Cluster, Faults, SimConfig, SimRng};
use tally_core::{NodeId, ProposeError};

/// Ticks of chaos before the world heals.
pub const CHAOS_TICKS: u64 = 300;

/// What one seed did, for reporting.
#[derive(Debug, Clone, Copy, Default)]
pub struct SeedReport {
    pub nodes: usize,
    pub acknowledged: usize,
    pub steps: u64,
}

/// The seeds to run: `SIM_SEED` alone, or `SIM_SEEDS` (default `default_count`) seeds from
/// `SIM_SEED_FROM` (default 1).
pub fn seeds_from_env(default_count: u64) -> Vec<u64> {
    if let Some(seed) = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        return vec![seed];
    }
    let number = |name: &str| std::env::var(name).ok().and_then(|s| s.parse::<u64>().ok());
    let count = number("SIM_SEEDS").unwrap_or(default_count);
    // Long runs start past the seeds CI and earlier runs covered.
    let first = number("SIM_SEED_FROM").unwrap_or(1);
    (first..first.saturating_add(count)).collect()
}

/// Runs `body` for every seed; a failure names its seed and how to replay it.
pub fn for_each_seed(default_count: u64, body: impl Fn(u64) + std::panic::RefUnwindSafe) {
    for seed in seeds_from_env(default_count) {
        if let Err(panic) = std::panic::catch_unwind(|| body(seed)) {
            eprintln!("simulation failed for seed {seed}: replay with SIM_SEED={seed}");
            std::panic::resume_unwind(panic);
        }
    }
}

/// One seed: chaos with a random workload, then healing, then liveness and durability checks.
pub fn run_seed(seed: u64) -> SeedReport {
    let nodes = 3 + (seed % 3) as usize;
    let mut cluster = Cluster::new(SimConfig::new(nodes, seed).with_faults(Faults::chaos()));
    let mut rng = SimRng::new(seed ^ 0x5EED);
    let mut next_payload = 0u64;
    let mut next_read = 0u64;
    for _ in 0..CHAOS_TICKS {
        let target = rng.below(nodes as u64) + 1;
        if rng.chance(400) {
            next_payload += 1;
            let _maybe = cluster.propose(target, &payload(next_payload));
        }
        if rng.chance(100) {
            next_read += 1;
            let _maybe = cluster.read_index(target, next_read);
        }
        cluster.run_ticks(1);
    }
    heal_and_check_liveness(&mut cluster, &mut next_payload);
    SeedReport {
        nodes,
        acknowledged: cluster.acknowledged_count(),
        steps: cluster.steps(),
    }
}

pub fn payload(n: u64) -> Vec<u8> {
    format!("w{n}").into_bytes()
}

/// Stops every fault, restarts every member, and asserts liveness: a leader within a bounded
/// number of ticks, new writes commit everywhere, and every member ends in the same state,
/// which (by state machine safety) holds every acknowledged write.
pub fn heal_and_check_liveness(cluster: &mut Cluster, next_payload: &mut u64) {
    let seed = cluster.seed();
    cluster.set_faults(Faults::latency());
    cluster.heal();
    for id in cluster.member_ids() {
        cluster.restart(id);
    }
    let election_bound = 30 * u64::from(SimConfig::new(3, 0).election_ticks());
    assert!(
        cluster.run_until(election_bound, |c| c.leader().is_some()),
        "seed {seed}: no leader after healing"
    );
    for _ in 0..3 {
        *next_payload += 1;
        let data = payload(*next_payload);
        assert!(
            commit_with_retries(cluster, &data),
            "seed {seed}: a write after healing never committed"
        );
    }
    let ids = cluster.member_ids();
    let converged = cluster.run_until(500, |c| {
        let first = c.state_of(ids[0]);
        ids.iter().all(|&id| c.state_of(id) == first)
    });
    assert!(
        converged,
        "seed {seed}: members did not converge after healing"
    );
}

/// Proposes at the current leader until the write is acknowledged (a leader change may drop
/// an unacknowledged proposal, which Raft allows). Returns whether it was acknowledged.
pub fn commit_with_retries(cluster: &mut Cluster, data: &[u8]) -> bool {
    for _ in 0..10 {
        let Some(leader) = cluster.leader() else {
            cluster.run_ticks(10);
            continue;
        };
        match cluster.propose(leader, data) {
            Ok(()) | Err(ProposeError::Busy) => {}
            Err(_) => {
                cluster.run_ticks(10);
                continue;
            }
        }
        if cluster.run_until(200, |c| c.acknowledged_index(data).is_some()) {
            return true;
        }
    }
    false
}

/// Ticks until every listed member has applied `data`.
pub fn wait_applied_on(cluster: &mut Cluster, ids: &[NodeId], data: &[u8], ticks_max: u64) -> bool {
    cluster.run_until(ticks_max, |c| ids.iter().all(|&id| c.applied_on(id, data)))
}
