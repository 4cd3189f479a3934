//! The randomized cluster simulation: 3, 4 and 5 nodes under loss, duplication, reordering,
//! delay, slow disks, crashes, partitions, drifting clocks, pauses, Figure 8 leader crashes
//! and crashes right after a vote, with Raft's safety invariants checked after every step and
//! liveness checked after healing.

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

/// `tally-sim --seed N` runs what `SIM_SEED=N` runs: the same nodes, faults and workload, so
/// the same number of steps and the same final state.
#[test]
fn the_demo_replays_the_seed_the_test_runs() {
    for seed in [1, 2, 3, 7, 42] {
        let expected = format!("summary {}", run_seed(seed).summary(seed));
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_tally-sim"))
            .args(["--seed", &seed.to_string()])
            .output()
            .expect("tally-sim runs");
        assert!(output.status.success(), "tally-sim --seed {seed} failed");
        let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
        let summary = stdout
            .lines()
            .find(|line| line.starts_with("summary "))
            .unwrap_or_else(|| panic!("tally-sim --seed {seed} printed no summary:\n{stdout}"));
        assert_eq!(summary, expected, "tally-sim --seed {seed} ran another run");
    }
}
