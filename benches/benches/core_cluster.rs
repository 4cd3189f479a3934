//! One thread driving a 3-node in-memory cluster with instant persistence: committed
//! entries per second at batch sizes 1, 16 and 256 (256-byte entries), and election time.

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tally_core::testing::{Cluster, Faults, SimConfig};

const ENTRY_BYTES: usize = 256;

fn settled_cluster() -> (Cluster, u64) {
    let config = SimConfig::new(3, 1)
        .with_faults(Faults::none())
        .with_invariant_checks(false)
        .with_snapshot_interval_entries(100_000)
        .with_message_bytes_max(1 << 20);
    let mut cluster = Cluster::new(config);
    assert!(cluster.run_until(1000, |c| c.leader().is_some()));
    cluster.run_ticks(5);
    let leader = cluster.leader().expect("leader");
    (cluster, leader)
}

/// Criterion's throughput counts elements per iteration; each iteration commits 16 batches.
fn replication_per_entry(c: &mut Criterion) {
    let mut group = c.benchmark_group("core_cluster_commit_16_batches");
    for batch in [1usize, 16, 256] {
        group.throughput(Throughput::Elements(16 * batch as u64));
        group.bench_with_input(BenchmarkId::new("batch", batch), &batch, |b, &batch| {
            let payloads: Vec<Bytes> = (0..batch)
                .map(|_| Bytes::from(vec![7u8; ENTRY_BYTES]))
                .collect();
            let (mut cluster, leader) = settled_cluster();
            b.iter(|| {
                for _ in 0..16 {
                    cluster.propose_batch(leader, &payloads);
                    cluster.settle();
                }
            });
        });
    }
    group.finish();
}

fn election(c: &mut Criterion) {
    let seeds = 200u64;
    let mut total_ticks = 0u64;
    for seed in 1..=seeds {
        let mut cluster = Cluster::new(
            SimConfig::new(3, seed)
                .with_faults(Faults::none())
                .with_invariant_checks(false),
        );
        assert!(cluster.run_until(1000, |c| c.leader().is_some()));
        total_ticks += cluster.now();
    }
    let election_ticks = SimConfig::new(3, 0).election_ticks();
    eprintln!(
        "election: {:.1} ticks on average over {seeds} seeds from a cold start (election_ticks = {election_ticks})",
        total_ticks as f64 / seeds as f64
    );
    c.bench_function("core_cluster_election_cold_start", |b| {
        let mut seed = 0;
        b.iter(|| {
            seed += 1;
            let mut cluster = Cluster::new(
                SimConfig::new(3, seed)
                    .with_faults(Faults::none())
                    .with_invariant_checks(false),
            );
            cluster.run_until(1000, |c| c.leader().is_some())
        });
    });
}

criterion_group!(benches, replication_per_entry, election);
criterion_main!(benches);
