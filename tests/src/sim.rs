//! The seed-sweep harness over `tally_core::testing::Cluster`.
//!
//! `SIM_SEED=<n>` replays one seed; `SIM_SEEDS=<count>` runs that many seeds (default 500).
//! A seed fixes everything a run does: its number of nodes, its faults and its workload, so
//! `tally-sim --seed <n>` shows the very run that `SIM_SEED=<n>` checks.

use tally_core::testing::{Cluster, Faults, SimConfig, SimRng};
use tally_core::{NodeId, ProposeError};

/// Ticks of chaos before the world heals.
pub const CHAOS_TICKS: u64 = 500;

/// What one seed did, for reporting, and for comparing two runs of the same seed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeedReport {
    pub nodes: usize,
    pub acknowledged: usize,
    pub steps: u64,
    /// Ticks of the world at the end of the run.
    pub ticks: u64,
    /// The (applied index, state hash) every member converged to.
    pub final_state: (u64, u64),
}

impl SeedReport {
    /// One line that names everything two runs of a seed must agree on.
    pub fn summary(&self, seed: u64) -> String {
        format!(
            "seed={seed} nodes={} ticks={} steps={} acknowledged={} applied={} hash={:016x}",
            self.nodes,
            self.ticks,
            self.steps,
            self.acknowledged,
            self.final_state.0,
            self.final_state.1
        )
    }
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
            eprintln!(
                "simulation failed for seed {seed}: replay with SIM_SEED={seed}, \
                 watch with `cargo run -p tally-tests --bin tally-sim -- --seed {seed}`"
            );
            std::panic::resume_unwind(panic);
        }
    }
}

/// The number of nodes of a seed's run: 3, 4 or 5.
pub fn nodes_for_seed(seed: u64) -> usize {
    3 + (seed % 3) as usize
}

/// One seed's run: chaos under a random workload of writes and linearizable reads, then
/// healing, then liveness and durability checks. Driven tick by tick, so the demo can show it.
#[derive(Debug)]
pub struct SeedRun {
    seed: u64,
    nodes: usize,
    cluster: Cluster,
    rng: SimRng,
    next_payload: u64,
    next_read: u64,
}

impl SeedRun {
    /// The run `SIM_SEED=seed` checks.
    pub fn new(seed: u64) -> SeedRun {
        SeedRun::with_nodes(seed, nodes_for_seed(seed))
    }

    /// The run of `seed` with another number of nodes (1 to 9).
    pub fn with_nodes(seed: u64, nodes: usize) -> SeedRun {
        let mut config = SimConfig::new(nodes, seed).with_faults(Faults::chaos());
        // Three seeds in four carry one entry per append, so a follower acknowledges an older
        // term's entry before the new leader's own (as in Raft's Figure 8); the others batch.
        if SimRng::new(seed ^ 0xB17E5).chance(750) {
            config = config.with_message_bytes_max(1);
        }
        SeedRun {
            seed,
            nodes,
            cluster: Cluster::new(config),
            rng: SimRng::new(seed ^ 0x5EED),
            next_payload: 0,
            next_read: 0,
        }
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Writes proposed so far.
    pub fn proposed(&self) -> u64 {
        self.next_payload
    }

    /// One tick of chaos: maybe a write and maybe a read at a random member, then the tick.
    pub fn chaos_tick(&mut self) {
        let target = self.rng.below(self.nodes as u64) + 1;
        if self.rng.chance(400) {
            self.next_payload += 1;
            let _maybe = self.cluster.propose(target, &payload(self.next_payload));
        }
        if self.rng.chance(250) {
            self.next_read += 1;
            let _maybe = self.cluster.read_index(target, self.next_read);
        }
        self.cluster.run_ticks(1);
    }

    /// Heals the world and checks liveness (see `heal_and_check_liveness`).
    pub fn heal(&mut self) {
        heal_and_check_liveness(&mut self.cluster, &mut self.next_payload);
    }

    pub fn report(&self) -> SeedReport {
        SeedReport {
            nodes: self.nodes,
            acknowledged: self.cluster.acknowledged_count(),
            steps: self.cluster.steps(),
            ticks: self.cluster.now(),
            final_state: self.cluster.state_of(1),
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }
}

/// One seed: `CHAOS_TICKS` ticks of chaos, then healing, then liveness and durability checks.
pub fn run_seed(seed: u64) -> SeedReport {
    let mut run = SeedRun::new(seed);
    for _ in 0..CHAOS_TICKS {
        run.chaos_tick();
    }
    run.heal();
    run.report()
}

pub fn payload(n: u64) -> Vec<u8> {
    format!("w{n}").into_bytes()
}

/// Stops every fault, resumes paused members, restarts crashed ones, and asserts liveness: a
/// leader within a bounded number of ticks, new writes commit everywhere, and every member
/// ends in the same state, which (by state machine safety) holds every acknowledged write.
/// Clocks keep their drift.
pub fn heal_and_check_liveness(cluster: &mut Cluster, next_payload: &mut u64) {
    let seed = cluster.seed();
    cluster.set_faults(Faults::latency());
    cluster.heal();
    for id in cluster.member_ids() {
        cluster.resume(id);
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
