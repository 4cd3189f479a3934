//! The cluster simulation with kvstore: 3, 4 and 5 members applying real `KvStore`s under
//! loss, duplication, reordering, delay, slow disks, partitions, crashes, restarts, pauses and
//! skewed, drifting clocks, with clients on every member. The invariants (hash agreement at
//! every index, revisions never reused, linearizable reads, lease keys and the lease rule) are
//! in `tally_tests::kv_sim`'s docs.
//!
//! `KV_SIM_SEED=<n>` replays one seed, `KV_SIM_SEEDS=<count>` runs more (from
//! `KV_SIM_SEED_FROM`), and `KV_SIM_VERBOSE=1` prints what each seed did.

use tally_tests::kv_sim::{Stats, for_each_seed, run_seed};

#[test]
fn replicas_agree_and_kept_alive_leases_never_expire_under_faults() {
    let started = std::time::Instant::now();
    let verbose = std::env::var("KV_SIM_VERBOSE").is_ok();
    let mut seeds = 0u64;
    let mut total = Stats::default();
    for_each_seed(300, |seed| {
        let report = run_seed(seed);
        let s = report.stats;
        if verbose {
            eprintln!("seed {seed}: {} members, {s:?}", report.nodes);
        }
        seeds += 1;
        total.entries_applied += s.entries_applied;
        total.snapshots_installed += s.snapshots_installed;
        total.writes_acknowledged += s.writes_acknowledged;
        total.linearizable_reads += s.linearizable_reads;
        total.serializable_reads += s.serializable_reads;
        total.keep_alives_local += s.keep_alives_local;
        total.keep_alives_replicated += s.keep_alives_replicated;
        total.keep_alives_untrusted += s.keep_alives_untrusted;
        total.renewals_unapplied_at_revoke += s.renewals_unapplied_at_revoke;
        total.expiry_revokes_checked += s.expiry_revokes_checked;
        total.client_revokes += s.client_revokes;
    });
    // A run that exercised nothing would prove nothing.
    if seeds >= 20 {
        assert!(total.keep_alives_replicated > 0 && total.keep_alives_local > 0);
        assert!(total.expiry_revokes_checked > 0 && total.snapshots_installed > 0);
        assert!(total.linearizable_reads > 0 && total.writes_acknowledged > 0);
    }
    eprintln!(
        "simulated {seeds} seeds in {:.1} s: {total:?}",
        started.elapsed().as_secs_f64()
    );
}
