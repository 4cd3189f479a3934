//! Crash at every write boundary: every byte prefix of every write, with only synced state,
//! and with torn sectors. Every recovery must keep each acknowledged batch, never bring back a
//! truncated entry, and give exactly the state after some prefix of the batches written.

use super::*;
use crate::wal::WalError;
use crate::wal::testing::CrashMode;

/// A scripted workload that covers appends, group commits, truncations (ghost-entry setup),
/// hard-state-only batches, segment rolls, snapshot markers with purges, and a snapshot that
/// replaces the whole log. Each inner Vec is one group commit (one `sync`).
pub(crate) fn workload() -> Vec<Vec<Batch>> {
    let hs = HardState::new;
    vec![
        vec![
            Batch::new()
                .with_entries(entries(1, 3, 1, 10))
                .with_hard_state(hs(1, 1, 0)),
        ],
        vec![
            Batch::new()
                .with_entries(entries(4, 5, 1, 20))
                .with_hard_state(hs(1, 1, 3)),
            Batch::new().with_entries(entries(6, 9, 1, 30)),
        ],
        // Overwrites 7..=9: entry 9 of term 1 must never come back.
        vec![
            Batch::new()
                .with_entries(entries(7, 8, 2, 15))
                .with_hard_state(hs(2, 2, 5)),
        ],
        vec![Batch::new().with_entries(entries(9, 12, 2, 60))],
        vec![Batch::new().with_hard_state(hs(2, 2, 9))],
        vec![
            Batch::new()
                .with_snapshot(SnapshotMarker::new(8, 2))
                .with_entries(entries(13, 16, 2, 80)),
        ],
        vec![
            Batch::new().with_entries(entries(17, 20, 3, 40)),
            Batch::new()
                .with_entries(entries(15, 16, 4, 25))
                .with_hard_state(hs(4, 1, 14)),
        ],
        // A snapshot from the leader that replaces the whole log.
        vec![
            Batch::new()
                .with_snapshot(SnapshotMarker::new(30, 5))
                .with_hard_state(hs(5, 3, 30)),
        ],
        vec![Batch::new().with_entries(entries(31, 36, 5, 50))],
        vec![
            Batch::new()
                .with_snapshot(SnapshotMarker::new(35, 5))
                .with_entries(entries(37, 40, 5, 35))
                .with_hard_state(hs(5, 3, 36)),
        ],
        vec![Batch::new().with_entries(entries(41, 41, 5, 200))],
    ]
}

/// Model states after 0, 1, ... batches.
pub(crate) fn model_prefixes(groups: &[Vec<Batch>]) -> Vec<Model> {
    let mut model = Model::default();
    let mut states = vec![model.clone()];
    for batch in groups.iter().flatten() {
        model.apply(batch);
        states.push(model.clone());
    }
    states
}

/// Runs the workload on a fresh `MemFs`, marking each acknowledged batch count in the log.
pub(crate) fn run_workload(groups: &[Vec<Batch>]) -> MemFs {
    run_workload_with(groups, false)
}

/// Like `run_workload`; `prepare` preallocates the next segment between groups, as the WAL
/// thread does when idle.
fn run_workload_with(groups: &[Vec<Batch>], prepare: bool) -> MemFs {
    let fs = MemFs::new();
    let (mut wal, _) = open(&fs, small_config());
    let mut done = 0u64;
    for group in groups {
        for batch in group {
            wal.append(batch.clone()).expect("append");
        }
        let durable = wal.sync().expect("sync");
        done += group.len() as u64;
        assert_eq!(durable.seq(), done);
        fs.mark(done);
        while prepare && wal.prepare_next_segment().expect("prepare") {}
    }
    fs
}

/// A random but valid workload: appends, overwrites, snapshots of the log, snapshots that
/// replace the log, and hard states, in groups of one or two batches.
fn random_workload(seed: u64) -> Vec<Vec<Batch>> {
    let mut rng = Rng::new(seed);
    let mut model = Model::default();
    let mut term = 1;
    let mut groups = Vec::new();
    for _ in 0..24 {
        let mut group = Vec::new();
        for _ in 0..=rng.below(2) {
            let (last, _) = model.last();
            let first = model.first();
            let has_entries = !model.entries.is_empty();
            let len = rng.below(60) as usize;
            let batch = match rng.below(10) {
                6 if has_entries => {
                    term += 1;
                    let k = first + rng.below(last - first + 1);
                    Batch::new().with_entries(entries(k, k + rng.below(3), term, len))
                }
                7 if has_entries => {
                    let i = first + rng.below(last - first + 1);
                    let t = model.term_at(i).expect("in log");
                    Batch::new()
                        .with_snapshot(SnapshotMarker::new(i, t))
                        .with_hard_state(HardState::new(term, 1, i))
                }
                8 => {
                    term += 1;
                    Batch::new().with_snapshot(SnapshotMarker::new(last + 1 + rng.below(5), term))
                }
                9 => Batch::new().with_hard_state(HardState::new(term, rng.below(4), last)),
                _ => {
                    Batch::new().with_entries(entries(last + 1, last + 1 + rng.below(4), term, len))
                }
            };
            model.apply(&batch);
            group.push(batch);
        }
        groups.push(group);
    }
    groups
}

/// Checks one crash image; then appends once more and reopens, to catch ghost entries.
/// Returns how many batches survived and how many torn bytes were cut.
fn check_image(fs: &MemFs, acked: u64, states: &[Model], what: &str) -> (usize, u64) {
    let (mut wal, recovered) = match Wal::open(&dir(), small_config(), Box::new(fs.clone())) {
        Ok(x) => x,
        Err(e) => panic!("{what}: recovery failed: {e}"),
    };
    let got = Model::of(&recovered);
    let Some(n) = states.iter().rposition(|s| *s == got) else {
        panic!("{what}: recovered state is not a prefix of the batches written: {got:?}");
    };
    assert!(
        n as u64 >= acked,
        "{what}: lost acknowledged batches: recovered {n} batches, {acked} acknowledged"
    );
    assert_eq!(wal.durable().last_index(), got.last().0, "{what}");
    let cut = recovered.report().truncated_bytes();

    // Write on top of the recovered log and recover again: the next batch must land after
    // exactly the recovered state, and nothing torn may reappear.
    let (last, term) = got.last();
    let next = Batch::new().with_entries(entries(last + 1, last + 2, term + 7, 33));
    let mut want = got.clone();
    want.apply(&next);
    wal.write(next).expect("write after recovery");
    drop(wal);
    let (_, again) = open(fs, small_config());
    assert_eq!(Model::of(&again), want, "{what}: second recovery");
    assert_eq!(again.report().truncated_bytes(), 0, "{what}");
    (n, cut)
}

#[test]
fn crash_at_every_byte_of_every_write() {
    let groups = workload();
    let states = model_prefixes(&groups);
    let fs = run_workload(&groups);
    let segments = open(&fs, small_config()).0.segment_seqs();
    assert!(
        segments.len() < 8 && segments[0] > 1,
        "the workload should roll and purge segments: {segments:?}"
    );
    let log = fs.log();
    let total = log.written_bytes();
    assert!(total > 4000, "workload too small: {total}");
    let mut survived = vec![0usize; states.len()];
    let mut torn_tails = 0;
    for crash_at in 0..=total {
        for mode in [CrashMode::Prefix, CrashMode::DurableOnly] {
            let (fs, marks) = log.crash_image(crash_at, mode);
            let acked = marks.last().copied().unwrap_or(0);
            let what = format!("crash at {crash_at} {mode:?}");
            let (n, cut) = check_image(&fs, acked, &states, &what);
            survived[n] += 1;
            torn_tails += usize::from(cut > 0);
        }
    }
    // The crash points really cover every batch boundary and many torn tails.
    assert!(survived.iter().all(|&c| c > 0), "{survived:?}");
    assert!(torn_tails > 1000, "{torn_tails}");
}

#[test]
fn crash_with_torn_sectors() {
    let groups = workload();
    let states = model_prefixes(&groups);
    let log = run_workload(&groups).log();
    for start in log.write_starts() {
        for even in [true, false] {
            let mode = CrashMode::TornSectors { even };
            let (fs, marks) = log.crash_image(start, mode);
            let acked = marks.last().copied().unwrap_or(0);
            let what = format!("torn write at {start} {mode:?}");
            let _ = check_image(&fs, acked, &states, &what);
        }
    }
}

#[test]
fn crash_at_every_byte_with_segments_prepared_ahead() {
    let groups = workload();
    let states = model_prefixes(&groups);
    let log = run_workload_with(&groups, true).log();
    for crash_at in 0..=log.written_bytes() {
        for mode in [CrashMode::Prefix, CrashMode::DurableOnly] {
            let (fs, marks) = log.crash_image(crash_at, mode);
            let acked = marks.last().copied().unwrap_or(0);
            let what = format!("prepared, crash at {crash_at} {mode:?}");
            let _ = check_image(&fs, acked, &states, &what);
        }
    }
    for start in log.write_starts() {
        for even in [true, false] {
            let mode = CrashMode::TornSectors { even };
            let (fs, marks) = log.crash_image(start, mode);
            let acked = marks.last().copied().unwrap_or(0);
            let what = format!("prepared, torn write at {start} {mode:?}");
            let _ = check_image(&fs, acked, &states, &what);
        }
    }
}

#[test]
fn crash_at_every_byte_of_random_workloads() {
    for seed in 1..=4 {
        let groups = random_workload(seed);
        let states = model_prefixes(&groups);
        let log = run_workload(&groups).log();
        for crash_at in 0..=log.written_bytes() {
            for mode in [CrashMode::Prefix, CrashMode::DurableOnly] {
                let (fs, marks) = log.crash_image(crash_at, mode);
                let acked = marks.last().copied().unwrap_or(0);
                let what = format!("seed {seed} crash at {crash_at} {mode:?}");
                let _ = check_image(&fs, acked, &states, &what);
            }
        }
        for start in log.write_starts() {
            for even in [true, false] {
                let mode = CrashMode::TornSectors { even };
                let (fs, marks) = log.crash_image(start, mode);
                let acked = marks.last().copied().unwrap_or(0);
                let what = format!("seed {seed} torn write at {start} {mode:?}");
                let _ = check_image(&fs, acked, &states, &what);
            }
        }
    }
}

/// etcd #22442: a truncated suffix must not come back after a torn tail was cut and a
/// shorter write followed.
#[test]
fn truncated_suffix_never_reappears() {
    let fs = MemFs::new();
    let (mut wal, _) = open(&fs, small_config());
    wal.write(Batch::new().with_entries(entries(1, 2, 1, 8)))
        .expect("write");
    // A long write that tears: only its first part reaches the disk.
    let before = fs.written_bytes();
    wal.append(Batch::new().with_entries(entries(3, 6, 1, 60)))
        .expect("append");
    fs.fail_writes_after(100);
    assert!(matches!(wal.sync(), Err(WalError::Io { .. })));
    assert_eq!(fs.written_bytes() - before, 100);
    drop(wal);
    fs.heal();

    let (mut wal, rec) = open(&fs, small_config());
    assert_eq!(rec.entries().len(), 2);
    assert!(rec.report().truncated_bytes() > 0);
    // Rewrite index 3 with a different, shorter entry; then the log is overwritten at 2.
    wal.write(Batch::new().with_entries(entries(3, 3, 2, 4)))
        .expect("write");
    wal.write(Batch::new().with_entries(entries(2, 2, 3, 4)))
        .expect("write");
    drop(wal);
    let (_, rec) = open(&fs, small_config());
    let got: Vec<(u64, u64)> = rec
        .entries()
        .iter()
        .map(|e| (e.index(), e.term()))
        .collect();
    assert_eq!(got, vec![(1, 1), (2, 3)]);
}
