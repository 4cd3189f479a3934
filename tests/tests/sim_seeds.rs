//! The randomized cluster simulation: 3, 4 and 5 nodes under loss, duplication, reordering,
//! delay, slow disks, crashes and partitions, with Raft's safety invariants checked after
//! every step and liveness checked after healing.

use tally_tests::sim::{for_each_seed, run_seed};

#[test]
fn random_faults_never_break_safety_and_heal_to_liveness() {
    let started = std::time::Instant::now();
    let seeds = std::sync::atomic::AtomicU64::new(0);
    for_each_seed(500, |seed| {
        let report = run_seed(seed);
        if std::env::var("SIM_VERBOSE").is_ok() {
            eprintln!(
                "seed {seed}: {} nodes, {} writes acknowledged, {} steps",
                report.nodes, report.acknowledged, report.steps
            );
        }
        seeds.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    let count = seeds.into_inner();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "simulated {count} seeds in {seconds:.1} s ({:.1} seeds/s)",
        count as f64 / seconds
    );
}
