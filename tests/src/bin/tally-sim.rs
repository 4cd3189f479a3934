//! `tally-sim`: watch a simulated tally cluster survive faults.
//!
//! ```text
//! cargo run --release -p tally-tests --bin tally-sim -- [--seed 7] [--nodes 5] [--ticks 500]
//! ```
//! Runs exactly what `SIM_SEED=<seed>` runs in `cargo test -p tally-tests --test sim_seeds`:
//! the seed's cluster (3 + seed % 3 nodes) under chaos (loss, duplication, delay, slow disks,
//! crashes, partitions, drifting clocks, pauses, Figure 8 leader crashes, crashes right after
//! a vote) with a random load of writes and reads, printing its state every 50 ticks; then it
//! heals the cluster and proves that every acknowledged write is on every member. `--nodes`
//! and `--ticks` change the run, which then no longer replays the test's seed.

use tally_core::Role;
use tally_core::testing::Cluster;
use tally_tests::sim::{CHAOS_TICKS, SeedRun, nodes_for_seed};

fn main() {
    let mut seed = 7u64;
    let mut nodes = None;
    let mut ticks = CHAOS_TICKS;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().and_then(|v| v.parse::<u64>().ok());
        match (flag.as_str(), value) {
            ("--nodes", Some(v)) if (1..=9).contains(&v) => nodes = Some(v as usize),
            ("--seed", Some(v)) => seed = v,
            ("--ticks", Some(v)) => ticks = v,
            _ => {
                eprintln!("usage: tally-sim [--seed N] [--nodes 1..9] [--ticks N]");
                std::process::exit(2);
            }
        }
    }
    let replays = nodes.is_none_or(|n| n == nodes_for_seed(seed)) && ticks == CHAOS_TICKS;
    let mut run = match nodes {
        Some(nodes) => SeedRun::with_nodes(seed, nodes),
        None => SeedRun::new(seed),
    };
    let nodes = run.cluster().member_ids().len();
    let clocks: Vec<String> = run
        .cluster()
        .member_ids()
        .into_iter()
        .map(|id| {
            format!(
                "n{id} {:.2}x",
                f64::from(run.cluster().clock_rate_per_mille(id)) / 1000.0
            )
        })
        .collect();
    println!(
        "tally-sim: {nodes} nodes, seed {seed}, {ticks} ticks of chaos; clocks {}",
        clocks.join(", ")
    );
    if replays {
        println!("this is the run SIM_SEED={seed} checks in the sim_seeds test");
    } else {
        println!("--nodes/--ticks changed the run: it is not the sim_seeds test's seed {seed}");
    }
    for tick in 1..=ticks {
        run.chaos_tick();
        if tick % 50 == 0 {
            print_state(run.cluster(), tick);
        }
    }
    println!("healing: stopping faults, resuming paused members, restarting crashed ones");
    run.heal();
    print_state(run.cluster(), run.cluster().now());
    let report = run.report();
    println!(
        "ok: {} of {} proposed writes were acknowledged; every member holds all of them; \
         safety invariants held over {} steps",
        report.acknowledged,
        run.proposed(),
        report.steps
    );
    println!("summary {}", report.summary(seed));
}

fn print_state(cluster: &Cluster, tick: u64) {
    let mut line = format!("tick {tick:>5}:");
    for id in cluster.member_ids() {
        match cluster.status(id) {
            None => line.push_str(&format!("  n{id}=down")),
            Some(status) => {
                let role = match status.role() {
                    Role::Leader => "L",
                    Role::Candidate | Role::PreCandidate => "c",
                    _ => "f",
                };
                let paused = if cluster.is_paused(id) { " paused" } else { "" };
                line.push_str(&format!(
                    "  n{id}={role} t{} c{}{paused}",
                    status.term(),
                    status.commit()
                ));
            }
        }
    }
    if cluster.in_figure_8() {
        line.push_str("  [figure 8]");
    }
    println!("{line}  acknowledged={}", cluster.acknowledged_count());
}
