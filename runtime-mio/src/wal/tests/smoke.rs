//! Real files and real fdatasync on a temporary directory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::wal::{Completion, SnapshotConfig, SnapshotMeta, SnapshotStore, StdFs, WalThread};

#[test]
fn real_fsync_round_trip_through_the_wal_thread() {
    let root = temp_dir("smoke");
    let wal_dir = root.join("wal");
    let config = WalConfig::default()
        .with_segment_bytes(256 << 10)
        .with_batch_bytes_max(64 << 10)
        .with_record_bytes_max(16 << 10);
    let (wal, rec) = Wal::open(&wal_dir, config.clone(), Box::new(StdFs)).expect("open");
    assert!(rec.entries().is_empty());

    let wakes = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&wakes);
    let (mut thread, done) = WalThread::spawn(
        wal,
        Box::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        }),
    )
    .expect("spawn");
    let mut model = Model::default();
    let mut last_seq = 0;
    for i in 0..200u64 {
        let batch = Batch::new()
            .with_entries(entries(i * 4 + 1, i * 4 + 4, 1, 500))
            .with_hard_state(HardState::new(1, 1, i * 4));
        model.apply(&batch);
        last_seq = thread.submit(batch).expect("submit");
    }
    let mut reports = 0;
    let mut durable_seq = 0;
    while durable_seq < last_seq {
        match done.recv().expect("completion") {
            Completion::Durable(d) => {
                assert!(d.seq() > durable_seq, "durable never goes back");
                durable_seq = d.seq();
                reports += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(reports <= 200);
    let wal = thread.shutdown().expect("thread ran");
    // The wake follows each send, so count wakes once the thread has stopped.
    assert!(wakes.load(Ordering::SeqCst) >= reports);
    assert_eq!(wal.durable().last_index(), 800);
    assert!(wal.segment_seqs().len() > 1, "the run should roll segments");
    drop(wal);

    let (_, rec) = Wal::open(&wal_dir, config, Box::new(StdFs)).expect("reopen");
    assert_eq!(Model::of(&rec), model);

    let store = SnapshotStore::open(
        &root.join("snap"),
        SnapshotConfig::default(),
        Box::new(StdFs),
    )
    .expect("snapshot store");
    let meta = SnapshotMeta::new(800, 1, vec![1, 2, 3], vec![4]);
    store.save(&meta, b"state machine bytes").expect("save");
    let snap = store.load(800, 1).expect("load");
    assert_eq!(snap.meta(), &meta);
    assert_eq!(&snap.data()[..], b"state machine bytes");
    remove_dir(&root);
}
