//! The cluster simulation with kvstore: Raft members (`tally_core::Node`) whose replicas
//! apply committed entries to real `tally_kvstore::KvStore`s, glued as tallyd glues them, under
//! loss, duplication, reordering, delay, slow disks, partitions, crashes, restarts and pauses.
//!
//! `KV_SIM_SEED=<n>` replays one seed; `KV_SIM_SEEDS=<count>` runs that many seeds from
//! `KV_SIM_SEED_FROM` (default 1).
//!
//! It drives `tally_core::Node`s itself rather than `tally_core::testing::Cluster`, whose
//! members apply entries to the simulator's own hash-chain state machine.
//!
//! # The world
//!
//! Virtual time moves in steps of 100 ms of true time. Each member has its own clock, skewed
//! (up to ten minutes) and drifting (up to 10% either way); it ticks its Raft node whenever its
//! clock has moved 100 ms, and its lessor reads it. A paused member stops ticking and
//! processing (its messages and disk writes wait) while its clock runs on; when it resumes it
//! ticks before it hears anything, so a deposed leader acts on a stale view. A crash loses the
//! disk write in progress (or leaves a prefix of its entries); a restarted member rebuilds its
//! store from its last snapshot (`KvStore::restore`) and re-applies the committed entries after
//! it. Snapshots are on: every 16 entries each member snapshots its store, and a lagging member
//! installs the leader's.
//!
//! # The clients
//!
//! Each step, clients send puts (some attached to leases), deletes, compare-and-sets (on a
//! key's mod revision or value), linearizable ranges (ReadIndex, served once the member has
//! applied the read index), serializable ranges, lease grants and revokes, and now and then a
//! compaction, each to a random member, followers included. Every lease holder sends a
//! keep-alive every quarter of its TTL (true time) to a random member; some stop, so leases also
//! expire. The primary (the leader's lessor) answers a keep-alive from its own clock; any other
//! member proposes it as `LeaseRenew` and answers when it applies it, as tallyd does. The leader
//! promotes its lessor when elected (extending leases by the election timeout), demotes when it
//! stops leading, and each tick proposes `LeaseRevoke` for expired leases (bounded per tick).
//!
//! Two details depart from tallyd's loop on purpose, because tallyd's break the invariants
//! below: a member demotes its lessor however it learns it no longer leads, also on a step-down
//! to "no leader known" (tallyd demotes only when it hears of another leader right after
//! leading, so a member that stepped down first keeps answering keep-alives from its own
//! clock); and request ids carry the member's start count, so they never repeat across restarts
//! (tallyd's restart from the same base, and an entry proposed before a crash then answers a
//! new client's request).
//!
//! # The invariants, checked as the simulation runs
//!
//! 1. Every replica's store hash agrees at every applied index (and at every snapshot index).
//! 2. Every write entry moves the revision by exactly one, and each revision is made by one
//!    entry only, on every member; every member holds the same keys at a given revision.
//! 3. An acknowledged put, delete or compare-and-set is in the history at the revision it was
//!    answered with (and a compare-and-set succeeded exactly when its compare held).
//! 4. A linearizable range never returns a revision below one acknowledged to any client
//!    before the range was sent, and every range returns the history's version of its key.
//! 5. When a lease is revoked, none of the keys attached to it remains, and no key stays
//!    attached to a lease that does not exist.
//! 6. The lease rule. A keep-alive is *acknowledged* when it is answered with TTL > 0: by the
//!    member it was sent to after applying its replicated `LeaseRenew` entry, or from a
//!    primary's clock (leader-local). A leader-local answer from a member that believes it
//!    leads counts only if that member leads the newest term ever elected and has committed an
//!    entry of it: a deposed leader that has not heard of its successor renews on its own clock
//!    only (as etcd 3.4's does), and a new leader's term may still be overwritten with what it
//!    renewed. A leader-local answer from a member that does not believe it leads always
//!    counts: such a member must not answer from its clock at all. A lease grant's answer
//!    counts as a keep-alive sent when the grant was. Then every `LeaseRevoke` that a leader
//!    proposed because the lease had expired on its clock, and that is applied (removing the
//!    lease), must satisfy: for every acknowledged keep-alive of the lease answered before the
//!    leader decided, at least the lease's TTL passed on that leader's clock between the
//!    keep-alive's sending and the decision. One exception: a replicated keep-alive whose entry
//!    the leader knew to be committed but had not applied yet (its own disk write still in
//!    progress when it ticked). tally's replicated keep-alive allows that race; it is counted
//!    (`Stats::renewals_unapplied_at_revoke`), not failed. So keep-alives at least every TTL/3
//!    of the leader's clock, each acknowledged, keep a lease alive, whichever members got them;
//!    and without a quorum no revoke commits at all.
//!
//! After the chaos, every fault stops: a write must then be acknowledged; then every client
//! stops, and every lease must be revoked on expiry and every member reach the same index and
//! hash.

mod checks;
mod clients;
mod events;
mod replica;
mod world;

use checks::{Checks, Decision};
use clients::Clients;
use events::{Request, SimEvent};
use world::{Faults, World};

pub use checks::Stats;

/// Steps of chaos (30 s of true time) before the world heals.
const CHAOS_STEPS: u64 = 300;
/// Steps after healing with the clients still running.
const CALM_STEPS: u64 = 50;
/// Bounds for the liveness checks after healing.
const LIVENESS_STEPS_MAX: u64 = 400;

/// What one seed did.
#[derive(Debug, Clone, Copy)]
pub struct SeedReport {
    pub nodes: usize,
    pub stats: Stats,
}

/// The seeds to run: `KV_SIM_SEED` alone, or `KV_SIM_SEEDS` (default `default_count`) seeds
/// from `KV_SIM_SEED_FROM` (default 1).
pub fn seeds_from_env(default_count: u64) -> Vec<u64> {
    let number = |name: &str| std::env::var(name).ok().and_then(|s| s.parse::<u64>().ok());
    if let Some(seed) = number("KV_SIM_SEED") {
        return vec![seed];
    }
    let count = number("KV_SIM_SEEDS").unwrap_or(default_count);
    let first = number("KV_SIM_SEED_FROM").unwrap_or(1);
    (first..first.saturating_add(count)).collect()
}

/// Runs `body` for every seed; a failure names its seed and how to replay it.
pub fn for_each_seed(default_count: u64, mut body: impl FnMut(u64)) {
    for seed in seeds_from_env(default_count) {
        let run = std::panic::AssertUnwindSafe(|| body(seed));
        if let Err(panic) = std::panic::catch_unwind(run) {
            eprintln!("kv simulation failed for seed {seed}: replay with KV_SIM_SEED={seed}");
            std::panic::resume_unwind(panic);
        }
    }
}

/// The simulation of one seed.
struct Sim {
    world: World,
    clients: Clients,
    checks: Checks,
}

impl Sim {
    fn step(&mut self) {
        self.world.begin_step();
        self.dispatch();
        let true_ms = self.world.true_ms();
        let members = self.world.ids();
        let floor = self.checks.acknowledged_revision_max();
        for (node, op, request) in self.clients.requests(true_ms, &members, floor) {
            self.world.submit(node, op, request);
            self.dispatch();
        }
        self.world.finish_step();
        self.dispatch();
    }

    /// Hands what happened to the checks and the clients, in order.
    fn dispatch(&mut self) {
        let true_ms = self.world.true_ms();
        for event in std::mem::take(&mut self.world.events) {
            match event {
                SimEvent::Applied(applied) => self.checks.on_applied(&applied, true_ms),
                SimEvent::Answer { op, index, answer } => {
                    if let Some(pending) = self.clients.take(op) {
                        self.checks.on_answer(&pending, index, &answer, true_ms);
                        self.clients.on_answer(op, &pending, &answer, true_ms);
                    }
                }
                SimEvent::RevokeDecided {
                    node,
                    request_id,
                    lease,
                    applied,
                    commit,
                } => {
                    let decision = Decision {
                        node,
                        lease,
                        decided_ms: true_ms,
                        clock: self.world.clock(node),
                        applied,
                        commit,
                    };
                    self.checks.on_revoke_decided(request_id, decision);
                }
            }
        }
    }

    fn run_until(&mut self, steps_max: u64, mut done: impl FnMut(&Sim) -> bool) -> bool {
        for _ in 0..steps_max {
            if done(self) {
                return true;
            }
            self.step();
        }
        done(self)
    }

    /// Every member is up at the same applied index and hash, with no lease left.
    fn converged_without_leases(&self) -> bool {
        let states: Vec<_> = self
            .world
            .ids()
            .into_iter()
            .map(|id| self.world.state_of(id))
            .collect();
        states.iter().all(|s| *s == states[0])
            && states[0].is_some_and(|(_, _, leases)| leases == 0)
    }
}

/// One seed: chaos with clients running, then healing, then the liveness checks.
pub fn run_seed(seed: u64) -> SeedReport {
    let nodes = 3 + (seed % 3) as usize;
    let mut sim = Sim {
        world: World::new(seed, nodes, Faults::chaos()),
        clients: Clients::new(seed),
        checks: Checks::new(seed),
    };
    for _ in 0..CHAOS_STEPS {
        sim.step();
    }
    sim.world.heal_all();
    for _ in 0..CALM_STEPS {
        sim.step();
    }
    assert!(
        sim.run_until(LIVENESS_STEPS_MAX, |s| s.world.leader().is_some()),
        "seed {seed}: no leader after healing"
    );
    let written = sim.write_through_leader();
    assert!(
        written,
        "seed {seed}: a write after healing was never acknowledged"
    );
    // With every holder stopped, each lease expires on the leader and is revoked.
    sim.clients.stop();
    let settled = sim.run_until(LIVENESS_STEPS_MAX, |s| s.converged_without_leases());
    assert!(
        settled,
        "seed {seed}: after healing, members did not converge with every lease revoked: {:?}",
        sim.world
            .ids()
            .into_iter()
            .map(|id| sim.world.state_of(id))
            .collect::<Vec<_>>()
    );
    SeedReport {
        nodes,
        stats: sim.checks.stats,
    }
}

impl Sim {
    /// Proposes a put at the leader until it is acknowledged (a leader change may drop it).
    fn write_through_leader(&mut self) -> bool {
        for _ in 0..10 {
            let Some(leader) = self.world.leader() else {
                self.run_until(10, |_| false);
                continue;
            };
            let request = Request::Put {
                key: bytes::Bytes::from_static(b"healed"),
                value: bytes::Bytes::from_static(b"yes"),
                lease: 0,
            };
            let floor = self.checks.acknowledged_revision_max();
            let op = self
                .clients
                .track(leader, request.clone(), self.world.true_ms(), floor);
            self.world.submit(leader, op, request);
            self.dispatch();
            if self.run_until(100, |s| s.clients.succeeded(op)) {
                return true;
            }
        }
        false
    }
}
